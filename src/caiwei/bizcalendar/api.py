from ninja import Router, Schema

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability

from . import services
from .models import BusinessCalendar

router = Router(tags=["业务日历"])


class CalendarOut(Schema):
    code: str
    name: str
    always_open: bool
    periods: str
    use_statutory: bool


class DueOut(Schema):
    calendar: str
    start: str
    minutes: int
    due: str
    key_periods: list[str]


class BetweenOut(Schema):
    calendar: str
    start: str
    end: str
    business_minutes: float


@router.get("", response=list[CalendarOut], summary="业务日历列表")
def calendars(request):
    ensure(request.user, Capability.VIEW_CALENDAR, "api:calendar")
    return list(BusinessCalendar.objects.all())


@router.get("/{code}/due", response=DueOut, summary="开始时间加 N 个工作分钟后的到期时间")
def due(request, code: str, start: str, minutes: int):
    ensure(request.user, Capability.VIEW_CALENDAR, "api:calendar")
    return services.due(code, start, minutes)


@router.get("/{code}/between", response=BetweenOut, summary="两时刻之间的工作分钟数")
def between(request, code: str, start: str, end: str):
    ensure(request.user, Capability.VIEW_CALENDAR, "api:calendar")
    return services.between(code, start, end)
