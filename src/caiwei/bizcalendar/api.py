from ninja import Field, Router, Schema

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability

from . import notice as notices
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


class NoticeIn(Schema):
    year: int = Field(..., description="通知所属年份，2000–2100")
    text: str = Field(
        ..., max_length=20000, description="每行“日期 类型 说明”，如“2027-02-07 班 春节调休”；范围写作“起~止”"
    )
    title: str = Field("", max_length=200, description="通知标题（可选）")
    dry_run: bool = Field(False, description="true 时只校验并返回预览，不写入")


class NoticeOut(Schema):
    year: int
    imported: bool
    holidays: list[str]
    workdays: list[str]
    warnings: list[str]


@router.post(
    "/notices",
    response=NoticeOut,
    summary="导入国务院办公厅节假日安排通知（整体替换该年份，全部成功或全部不写入）",
)
def import_notice(request, payload: NoticeIn):
    ensure(request.user, Capability.MANAGE_CALENDAR, "api:calendar:notice")
    parsed = notices.parse_notice(payload.year, payload.text)
    if not payload.dry_run:
        notices.import_notice(payload.year, payload.text, payload.title)
    return {
        "year": parsed.year,
        "imported": not payload.dry_run,
        "holidays": [str(d) for d in parsed.holidays],
        "workdays": [str(d) for d in parsed.workdays],
        "warnings": parsed.warnings,
    }
