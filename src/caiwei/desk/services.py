"""SLA look-ups against the stored calendars (the desk's pages and API come with the rest of the service desk)."""

from datetime import datetime

from django.core.exceptions import ValidationError

from caiwei.bizcalendar.models import BusinessCalendar
from caiwei.bizcalendar.services import parse_instant

from .presets import PRESETS
from .sla import Ticket, evaluate


def calendars() -> dict:
    specs = {c.code: c.spec() for c in BusinessCalendar.objects.prefetch_related("days")}
    missing = {"workday", "always"} - set(specs)
    if missing:
        raise ValidationError(f"缺少业务日历：{'、'.join(sorted(missing))}")
    return specs


def due(preset: str, severity: str, ticket_type: str, opened: str | datetime) -> dict[str, str | None]:
    policy = PRESETS.get(preset)
    if policy is None:
        raise ValidationError(f"未知的服务时限预设“{preset}”，可选：{'、'.join(PRESETS)}")
    start = parse_instant(opened, "opened")
    try:
        states = evaluate(policy, calendars(), Ticket(start, severity, ticket_type), start)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    return {clock: state.due.isoformat() if state.due else None for clock, state in states.items()}
