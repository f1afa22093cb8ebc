"""Calendar look-ups for pages, the API and commands: one place that turns a stored calendar into answers."""

from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from . import engine
from .models import BusinessCalendar

MAX_MINUTES = 1_000_000  # about eight years of working days: more is a typo, and would run past the calendars
YEARS = (2000, 2100)
LABELS = {"start": "开始时间", "end": "结束时间", "opened": "受理时间"}


def get_calendar(code: str) -> BusinessCalendar:
    from caiwei.inputs import text_problem

    usable = len(code) <= 40 and not text_problem(code)
    calendar = BusinessCalendar.objects.prefetch_related("days").filter(code=code).first() if usable else None
    if calendar is None:
        raise ValidationError({"calendar": f"业务日历“{code}”不存在"})
    return calendar


def parse_instant(value: str | datetime, field: str) -> datetime:
    if isinstance(value, datetime):
        instant = value
    else:
        try:
            instant = datetime.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise ValidationError(
                {field: f"时间“{value}”格式应为 ISO 8601，如 2026-09-30T17:30+08:00"}
            ) from exc
    if not YEARS[0] <= instant.year <= YEARS[1]:
        label = LABELS.get(field, "时间")
        raise ValidationError({field: f"{label}“{value}”应在 {YEARS[0]} 年至 {YEARS[1]} 年之间"})
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant)  # a bare time is read as Beijing time
    return instant


def due(code: str, start: str | datetime, minutes: int) -> dict:
    if minutes < 0:
        raise ValidationError({"minutes": "分钟数不能为负"})
    if minutes > MAX_MINUTES:
        raise ValidationError({"minutes": f"分钟数不能超过 {MAX_MINUTES}"})
    spec = get_calendar(code).spec()
    begin = parse_instant(start, "start")
    end = engine.add_business_minutes(spec, begin, minutes)
    return {
        "calendar": code,
        "start": begin.isoformat(),
        "minutes": minutes,
        "due": end.isoformat(),
        "key_periods": [p.name for p in engine.key_periods_at(spec, begin)],
    }


def between(code: str, start: str | datetime, end: str | datetime) -> dict:
    spec = get_calendar(code).spec()
    a, b = parse_instant(start, "start"), parse_instant(end, "end")
    return {
        "calendar": code,
        "start": a.isoformat(),
        "end": b.isoformat(),
        "business_minutes": engine.business_minutes_between(spec, a, b),
    }


def upcoming_days(calendar: BusinessCalendar, days: int = 45) -> list[tuple[date, bool]]:
    """The next ``days`` dates with whether each is a business day, for the calendar page."""
    spec = calendar.spec()
    today = timezone.localdate()
    return [(d, engine.is_business_day(spec, d)) for d in (today + timedelta(n) for n in range(days))]
