import re
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import File, Form, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import field_validator

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.inputs import Line, Text, text_problem
from caiwei.regions.models import Region

from . import flow, services
from .models import HotlineCall
from .services import visible_tickets

router = Router(tags=["服务台"])

# Bad input is refused here with the field named, before it reaches the services (which cut or crash on it).
NUMBER = Path(..., pattern=r"^GD\d{12}$", description="工单号，如 GD202603020001")
ID = Path(..., gt=0, le=2**63 - 1)
PHONE = re.compile(r"^[\d\s()（）+\-#*/,，、;；转分机]*$")
MONTH = Query(None, pattern=r"^20\d\d-(0[1-9]|1[0-2])$", description="月份 YYYY-MM")


def _region(code: str, field: str = "region") -> Region:
    region = Region.objects.filter(code=code).first() if len(code) <= 20 else None
    if region is None:
        raise ValidationError({field: f"区划代码“{code}”不存在"})
    return region


def _ticket(user, number: str, field: str = "ticket"):
    ticket = visible_tickets(user).filter(number=number).first() if len(number) <= 20 else None
    if ticket is None:
        raise ValidationError({field: f"工单号“{number}”不存在或不在您的授权区划内"})
    return ticket


def _phone(value: str) -> str:
    if value and not PHONE.match(value):
        raise ValueError(f"“{value}”不是电话号码")
    return value


class TicketOut(Schema):
    number: str
    region: str
    system: str
    ticket_type: str
    severity: str
    status: str
    title: str
    tier: str
    assignee: str | None
    opened_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    due_first_response: datetime | None
    due_resolution: datetime | None


def ticket_out(t) -> dict:
    return {
        "number": t.number,
        "region": t.region.code,
        "system": t.system,
        "ticket_type": t.ticket_type,
        "severity": t.severity,
        "status": t.status,
        "title": t.title,
        "tier": t.tier,
        "assignee": t.assignee.username if t.assignee else None,
        "opened_at": t.opened_at,
        "responded_at": t.responded_at,
        "resolved_at": t.resolved_at,
        "due_first_response": t.due_first_response,
        "due_resolution": t.due_resolution,
    }


class TicketFilter(Schema):
    region: Line(20) | None = None
    status: str | None = None
    severity: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value):
        if value is not None and value != "open" and value not in flow.STATUS_LABELS:
            raise ValueError(f"应为 open 或 {'、'.join(flow.STATUS_LABELS)} 之一")
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value):
        from .sla import SEVERITIES

        if value is not None and value not in SEVERITIES:
            raise ValueError(f"应为 {'、'.join(SEVERITIES)} 之一")
        return value


@router.get("/tickets", response=list[TicketOut], summary="工单列表（按授权区划，最多 500 条）")
def list_tickets(
    request, filters: Query[TicketFilter], offset: int = Query(0, ge=0), limit: int = Query(100, ge=1)
):
    ensure(request.user, Capability.DESK_CREATE, "api:desk.tickets")
    qs = visible_tickets(request.user)
    if filters.region:
        qs = qs.filter(region__code=filters.region)
    if filters.status == "open":
        qs = qs.filter(status__in=flow.OPEN_STATUSES)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    limit = max(1, min(limit, 500))
    return [ticket_out(t) for t in qs[offset : offset + limit]]


class TicketIn(Schema):
    region: Line(20)
    system: Line(20)
    ticket_type: Line(10)
    severity: Line(4) = "一般"
    title: Line(120, required=True)
    description: Text(10000, required=True)
    channel: Line(12) = "portal"
    module: Line(40) = ""
    requester_kind: Line(10) = "unit"
    requester_name: Line(60, required=True)
    requester_org: Line(120) = ""
    requester_phone: Line(30) = ""

    _phone = field_validator("requester_phone")(_phone)


@router.post("/tickets", response={201: TicketOut}, summary="登记工单")
def create_ticket(request, data: TicketIn):
    fields = data.dict()
    region = _region(fields.pop("region"))
    ticket = services.create_ticket(request.user, region=region, **fields)
    return Status(201, ticket_out(ticket))


class EventOut(Schema):
    at: datetime
    kind: str
    label: str
    text: str
    actor: str
    internal: bool
    data: dict


class LinkedCallOut(Schema):
    id: int
    at: datetime
    caller_number: str
    caller_name: str
    answered: bool


class TicketDetailOut(TicketOut):
    timeline: list[EventOut]
    calls: list[LinkedCallOut]


@router.get(
    "/tickets/{number}",
    response=TicketDetailOut,
    summary="工单详情，含时间线（受理、分派、状态与计时暂停、回复、附件、来电、邮件、升级、评价）",
)
def get_ticket(request, number: str = NUMBER):
    from . import timeline

    ensure(request.user, Capability.DESK_CREATE, "api:desk.ticket")
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    calls = ticket.calls.all() if request.user.can(Capability.DESK_WORK) else []
    return {
        **ticket_out(ticket),
        "timeline": [e.as_dict() for e in timeline.events(ticket, request.user)],
        "calls": [
            {
                "id": c.pk,
                "at": c.at,
                "caller_number": c.caller_number,
                "caller_name": c.caller_name,
                "answered": c.answered,
            }
            for c in calls
        ],
    }


class StatusIn(Schema):
    status: Line(12)
    note: Text(300) = ""


@router.post("/tickets/{number}/status", response=TicketOut, summary="变更工单状态")
def set_status(request, data: StatusIn, number: str = NUMBER):
    ensure(request.user, Capability.DESK_WORK, "api:desk.status")
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    return ticket_out(services.change_status(request.user, ticket, data.status, data.note))


class CallIn(Schema):
    region: Line(20)
    answered: bool
    caller_number: Line(30, required=True)
    caller_name: Line(60) = ""
    caller_org: Line(120) = ""
    summary: Text(300) = ""
    at: datetime | None = None
    ticket: Line(20) | None = None

    _phone = field_validator("caller_number")(_phone)

    @field_validator("at")
    @classmethod
    def _at(cls, value):
        if value is None:
            return value
        if timezone.is_naive(value):
            value = timezone.make_aware(value)  # a bare time is Beijing time
        if not datetime(2000, 1, 1, tzinfo=value.tzinfo) <= value <= timezone.now() + timedelta(minutes=5):
            raise ValueError("来电时间应在 2000 年之后、不晚于现在")
        return value


class CallOut(Schema):
    id: int
    region: str
    at: datetime
    answered: bool
    caller_number: str
    callback_due: datetime | None
    callback_at: datetime | None
    ticket: str | None


def call_out(c) -> dict:
    return {
        "id": c.pk,
        "region": c.region.code,
        "at": c.at,
        "answered": c.answered,
        "caller_number": c.caller_number,
        "callback_due": c.callback_due,
        "callback_at": c.callback_at,
        "ticket": c.ticket.number if c.ticket else None,
    }


@router.post("/calls", response={201: CallOut}, summary="登记热线来电（未接来电给出当日回拨时限）")
def log_call(request, data: CallIn):
    fields = data.dict(exclude_none=True)
    region = _region(fields.pop("region"))
    if "ticket" in fields:
        fields["ticket"] = _ticket(request.user, fields["ticket"])
    return Status(201, call_out(services.log_call(request.user, region=region, **fields)))


@router.get("/calls", response=list[CallOut], summary="热线来电（待回拨优先）")
def list_calls(request, pending: bool = False, limit: int = Query(100, ge=1)):
    ensure(request.user, Capability.DESK_WORK, "api:desk.calls")
    qs = HotlineCall.objects.visible_to(request.user).select_related("region", "ticket")
    if pending:
        qs = qs.filter(answered=False, callback_at__isnull=True).order_by("callback_due")
    return [call_out(c) for c in qs[: max(1, min(limit, 500))]]


@router.post("/calls/{call_id}/callback", response=CallOut, summary="记录已回拨")
def callback(request, call_id: int = ID, note: str = Query("", max_length=300)):
    ensure(request.user, Capability.DESK_WORK, "api:desk.callback")
    if problem := text_problem(note, multiline=True):
        raise ValidationError({"note": problem})
    call = get_object_or_404(HotlineCall.objects.visible_to(request.user), pk=call_id)
    return call_out(services.call_back(request.user, call, note))


class RateIn(Schema):
    score: int
    comment: Text(500) = ""


@router.post("/tickets/{number}/rating", response={201: dict}, summary="提出人评价（1～5）")
def rate(request, data: RateIn, number: str = NUMBER):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    survey = services.rate(request.user, ticket, data.score, data.comment)
    return Status(201, {"ticket": number, "score": survey.score})


@router.get("/kpis", summary="月度考核指标（按授权区划）")
def kpis(request, month: str | None = MONTH):
    from .kpi import monthly_kpis

    ensure(request.user, Capability.DESK_VIEW, "api:desk.kpis")
    try:
        return monthly_kpis(request.user, month)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class CommentIn(Schema):
    body: Text(10000, required=True)
    internal: bool = False


@router.post("/tickets/{number}/comments", response={201: dict}, summary="回复或内部备注")
def add_comment(request, data: CommentIn, number: str = NUMBER):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    comment = services.comment(request.user, ticket, data.body, data.internal)
    return Status(201, {"ticket": number, "id": comment.pk, "internal": comment.internal})


class AttachmentOut(Schema):
    id: int
    name: str
    size: int


class ReplyOut(Schema):
    id: int
    ticket: str
    status: str
    attachments: list[AttachmentOut]


@router.post(
    "/tickets/{number}/replies",
    response={201: ReplyOut},
    summary="提出人回复（可附文件，按内容核对类型）；等待用户时回复即恢复处理与计时",
)
def reply(request, number: str = NUMBER, body: Form[str] = "", files: File[list[UploadedFile]] = None):
    ensure(request.user, Capability.DESK_CREATE, "api:desk.reply")
    ticket = get_object_or_404(visible_tickets(request.user).filter(requester=request.user), number=number)
    note = services.comment(request.user, ticket, body, files=files or [])
    ticket.refresh_from_db(fields=["status"])
    return Status(
        201,
        {
            "id": note.pk,
            "ticket": number,
            "status": ticket.status,
            "attachments": [{"id": a.pk, "name": a.name, "size": a.size} for a in note.attachments.all()],
        },
    )


class CommentOut(Schema):
    id: int
    author: str | None
    at: datetime
    body: str
    internal: bool
    attachments: list[AttachmentOut]


@router.get(
    "/tickets/{number}/comments", response=list[CommentOut], summary="对话（提出人只见回复，不含内部备注）"
)
def list_comments(request, number: str):
    ensure(request.user, Capability.DESK_CREATE, "api:desk.comments")
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    files: dict[int, list[dict]] = {}
    for a in services.visible_attachments(request.user, ticket).filter(comment__isnull=False):
        files.setdefault(a.comment_id, []).append({"id": a.pk, "name": a.name, "size": a.size})
    return [
        {
            "id": c.pk,
            "author": c.author.username if c.author else None,
            "at": c.at,
            "body": c.body,
            "internal": c.internal,
            "attachments": files.get(c.pk, []),
        }
        for c in services.public_comments(request.user, ticket).select_related("author")
    ]


@router.post(
    "/tickets/{number}/attachments",
    response={201: list[AttachmentOut]},
    summary="上传附件（按内容核对类型；多个文件全部合格才保存，附言 body 可选）",
)
def upload(
    request,
    number: str,
    files: File[list[UploadedFile]],
    body: Form[str] = "",
    internal: Form[bool] = False,
):
    ensure(request.user, Capability.DESK_CREATE, "api:desk.attachments")
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    if body.strip():
        note = services.comment(request.user, ticket, body, internal, files=files)
        items = list(note.attachments.all())
    elif internal:
        raise ValidationError({"body": "内部备注的附件须附说明"})
    else:
        items = services.attach_files(request.user, ticket, files)
    return Status(201, [{"id": a.pk, "name": a.name, "size": a.size} for a in items])


class AssignIn(Schema):
    assignee: Line(150) | None = None
    tier: str | None = None

    @field_validator("tier")
    @classmethod
    def _tier(cls, value):
        from .models import Ticket

        if value and value not in Ticket.Tier.values:
            raise ValueError(f"应为 {'、'.join(Ticket.Tier.values)} 之一")
        return value


@router.post("/tickets/{number}/assign", response=TicketOut, summary="分派与升级（一线/二线/厂商）")
def assign(request, data: AssignIn, number: str = NUMBER):
    from caiwei.accounts.models import User

    ensure(request.user, Capability.DESK_WORK, "api:desk.assign")
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    assignee = User.objects.filter(username=data.assignee).first() if data.assignee else None
    if data.assignee and assignee is None:
        raise ValidationError({"assignee": f"账号“{data.assignee}”不存在"})
    return ticket_out(services.assign(request.user, ticket, assignee, data.tier))


class VendorIn(Schema):
    reference: Line(60, required=True)
    due: date
    vendor: Line(80, required=True) = "省级开发团队"
    note: Text(500) = ""

    @field_validator("due")
    @classmethod
    def _due(cls, value):
        if value > timezone.localdate() + timedelta(days=services.VENDOR_DUE_MAX_DAYS):
            raise ValueError("要求答复日期不能晚于一年之后")
        return value


@router.post("/tickets/{number}/vendor-orders", response={201: dict}, summary="转厂商工单")
def to_vendor(request, data: VendorIn, number: str = NUMBER):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    order = services.to_vendor(request.user, ticket, **data.dict())
    return Status(
        201, {"id": order.pk, "reference": order.reference, "status": order.status, "due": order.due}
    )


class ComplaintIn(Schema):
    region: Line(20)
    complainant: Line(60, required=True)
    description: Text(10000, required=True)
    ticket: Line(20) | None = None


@router.post("/complaints", response={201: dict}, summary="登记投诉（由项目经理认定有效与否）")
def add_complaint(request, data: ComplaintIn):
    region = _region(data.region)
    ticket = _ticket(request.user, data.ticket) if data.ticket else None
    complaint = services.register_complaint(
        request.user, region=region, complainant=data.complainant, description=data.description, ticket=ticket
    )
    return Status(201, {"id": complaint.pk})


@router.post("/complaints/{complaint_id}/decision", response=dict, summary="认定投诉（项目经理）")
def decide(request, valid: bool, complaint_id: int = ID, note: str = Query("", max_length=300)):
    from .models import Complaint

    ensure(request.user, Capability.DESK_DECIDE, "api:desk.decide")
    if problem := text_problem(note, multiline=True):
        raise ValidationError({"note": problem})
    complaint = get_object_or_404(Complaint.objects.visible_to(request.user), pk=complaint_id)
    services.decide_complaint(request.user, complaint, valid, note)
    return {"id": complaint.pk, "valid": complaint.valid}


@router.get("/report", summary="运维月报（Word）")
def report(request, month: str | None = MONTH):
    from django.http import HttpResponse

    from caiwei.audit.log import record_export

    from .report import monthly_report

    ensure(request.user, Capability.DESK_VIEW, "api:desk.report")
    try:
        name, data = monthly_report(request.user, month)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    record_export("desk.monthly_report", 1, {"month": month or ""})
    response = HttpResponse(
        data, content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    response["Content-Disposition"] = 'attachment; filename="monthly-report.docx"'
    return response
