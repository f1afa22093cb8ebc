"""导入国务院办公厅节假日安排通知: a small line format, checked whole before anything is written.

Format (one day or one range a line; blank lines and lines starting with # are ignored)::

    # 国务院办公厅关于2027年部分节假日安排的通知
    2027-01-01 休 元旦
    2027-02-05~2027-02-11 休 春节
    2027-02-07 班 春节调休

- 日期: ``YYYY-MM-DD``; a range is ``起~止`` (也可写 ``～``、``至`` 或 ``..``), both ends included.
- 类型: 休 (也可写 休息、放假) or 班 (也可写 上班、工作).
- 说明 (optional): the rest of the line.
- Every date lies in the notice's year, or in the December before it (a 元旦 调休 can fall there); a date
  appears once.

The statutory days of the law stay off unless the notice lists them as 班; the preview says which law days
the notice does not list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape, format_html

from . import engine, statutory
from .models import BusinessCalendar, CalendarDay, HolidayNotice, HolidayNoticeDay

YEARS = (2000, 2100)
KINDS = {
    "休": CalendarDay.Kind.HOLIDAY,
    "休息": CalendarDay.Kind.HOLIDAY,
    "放假": CalendarDay.Kind.HOLIDAY,
    "班": CalendarDay.Kind.WORKDAY,
    "上班": CalendarDay.Kind.WORKDAY,
    "工作": CalendarDay.Kind.WORKDAY,
}
RANGE = re.compile(r"\s*(?:~|～|至|\.\.)\s*")
MAX_LINES = 400
MAX_RANGE_DAYS = 31
FORMAT_HELP = (
    "每行“日期 类型 说明”，如“2027-02-07 班 春节调休”；日期范围写作“2027-02-05~2027-02-11”；类型为“休”或“班”"
)


@dataclass
class ParsedNotice:
    year: int
    days: list[tuple[date, str, str]] = field(default_factory=list)  # (date, kind, note), by date
    warnings: list[str] = field(default_factory=list)

    @property
    def holidays(self) -> list[date]:
        return [d for d, kind, _ in self.days if kind == CalendarDay.Kind.HOLIDAY]

    @property
    def workdays(self) -> list[date]:
        return [d for d, kind, _ in self.days if kind == CalendarDay.Kind.WORKDAY]


def check_year(year) -> int:
    try:
        value = int(year)
    except (TypeError, ValueError):
        raise ValidationError({"year": f"年份“{year}”应为整数"}) from None
    if not YEARS[0] <= value <= YEARS[1]:
        raise ValidationError({"year": f"年份 {value} 应在 {YEARS[0]} 至 {YEARS[1]} 之间"})
    return value


def _day(text: str, number: int, errors: list[str]) -> date | None:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"第 {number} 行：日期“{text}”无效，应为存在的日期，格式 YYYY-MM-DD")
        return None


def parse_notice(year, text: str) -> ParsedNotice:
    """The notice's days, or ValidationError listing every bad line (“第 N 行：字段……”)."""
    year = check_year(year)
    lines = (text or "").splitlines()
    if len(lines) > MAX_LINES:
        raise ValidationError({"text": f"通知内容最多 {MAX_LINES} 行"})
    errors: list[str] = []
    seen: dict[date, int] = {}
    days: list[tuple[date, str, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.replace("\u3000", " ").strip()
        if not line or line.startswith("#"):
            continue
        line = RANGE.sub("~", line)
        parts = line.split(maxsplit=2)
        if len(parts) < 2:
            errors.append(f"第 {number} 行：缺少类型，应为“日期 类型 说明”，如“{year}-01-01 休 元旦”")
            continue
        when, kind_word, note = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
        ends = when.split("~")
        if len(ends) > 2:
            errors.append(f"第 {number} 行：日期范围“{when}”应为“起~止”")
            continue
        first = _day(ends[0], number, errors)
        last = _day(ends[1], number, errors) if len(ends) == 2 else first
        kind = KINDS.get(kind_word)
        if kind is None:
            errors.append(f"第 {number} 行：类型“{kind_word}”无法识别，应为“休”或“班”")
        if len(note) > 100:
            errors.append(f"第 {number} 行：说明最多 100 个字")
        if first is None or last is None or kind is None:
            continue
        if last < first or (last - first).days >= MAX_RANGE_DAYS:
            errors.append(
                f"第 {number} 行：日期范围“{when}”的结束日期应不早于开始日期，且不超过 {MAX_RANGE_DAYS} 天"
            )
            continue
        day = first
        while day <= last:
            if not (day.year == year or (day.year == year - 1 and day.month == 12)):
                errors.append(
                    f"第 {number} 行：日期 {day} 不属于 {year} 年（只能是 {year} 年内或 {year - 1} 年 12 月的调休日）"
                )
            elif day in seen:
                errors.append(f"第 {number} 行：日期 {day} 与第 {seen[day]} 行重复")
            else:
                seen[day] = number
                days.append((day, kind, note[:100]))
            day += timedelta(days=1)
    if errors:
        raise ValidationError(errors)
    if not days:
        raise ValidationError({"text": f"通知内容为空：{FORMAT_HELP}"})
    days.sort()
    parsed = ParsedNotice(year=year, days=days)
    kinds = {d: kind for d, kind, _ in days}
    for day, name in statutory.law_holidays(year).items():
        if kinds.get(day) == CalendarDay.Kind.WORKDAY:
            parsed.warnings.append(f"{day}（{name}）是法定节假日，通知将其列为上班日；导入后以通知为准")
        elif day not in kinds:
            parsed.warnings.append(f"通知未列出法定节假日 {day}（{name}）；导入后该日仍按法定节假日休息")
    return parsed


@transaction.atomic
def import_notice(year, text: str, title: str = "") -> HolidayNotice:
    """Replace the year's notice with ``text`` (all or nothing) and record the import in the audit chain."""
    from caiwei.audit.context import current_actor
    from caiwei.audit.log import record
    from caiwei.audit.models import AuditAction

    parsed = parse_notice(year, text)
    title = (title or "").strip()[:200]
    old = HolidayNotice.objects.filter(year=parsed.year).first()
    before = {str(d.date): d.kind for d in old.days.all()} if old else None
    if old is not None:
        old.delete()
    notice = HolidayNotice.objects.create(
        year=parsed.year, title=title, text=text, imported_by=current_actor().username[:150]
    )
    HolidayNoticeDay.objects.bulk_create(
        HolidayNoticeDay(notice=notice, date=d, kind=kind, note=note) for d, kind, note in parsed.days
    )
    record(
        AuditAction.ADMIN,
        obj=notice,
        before=before,
        after={str(d): kind for d, kind, _ in parsed.days},
        detail={"operation": "导入节假日安排通知", "year": parsed.year, "warnings": parsed.warnings},
    )
    return notice


def missing_years(today: date | None = None) -> list[int]:
    """Years the calendars need whose 调休 schedule is unknown: this year, and from 1 November next year too.
    Empty when no calendar follows the statutory days."""
    today = today or timezone.localdate()
    if not BusinessCalendar.objects.filter(use_statutory=True).exists():
        return []
    wanted = [today.year] + ([today.year + 1] if (today.month, today.day) >= (11, 1) else [])
    known = engine.official_years(HolidayNotice.objects.values_list("year", flat=True))
    return [y for y in wanted if y not in known]


def missing_message(years: list[int], *, html: bool = False) -> str:
    """The warning about the missing years: plain text for logs and the command line, or (``html``) escaped HTML
    with the command to type in ``<code>``."""
    names = "、".join(f"{y} 年" for y in years)
    text = (
        f"{names}的放假调休安排尚未导入：业务日历暂按《全国年节及纪念日放假办法》计算的法定节假日休息，"
        "不含调休上班日和连休，工单时限可能与实际放假安排不符。国务院办公厅发布该年部分节假日安排的通知后，"
        "请有“维护业务日历”权限的管理员在业务日历页点击“导入放假安排通知”，或用命令 {command}、"
        "接口 {api} 导入。"
    )
    command, api = "caiwei calendar import-notice", "POST /api/calendar/notices"
    if html:
        return format_html(
            escape(text),
            command=format_html("<code>{}</code>", command),
            api=format_html("<code>{}</code>", api),
        )
    return text.format(command=command, api=api)
