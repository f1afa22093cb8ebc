import re
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, File, Form, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.responses import NinjaJSONEncoder
from pydantic import field_validator

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.inputs import Line, Text, text_problem
from caiwei.regions.models import Region

from . import services
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
    view: str | None = Field(
        None,
        description="保存的视图：mine 我的待办、group 我组待办、due_soon 即将超时、overdue 已超时；不填为全部",
    )
    region: Line(20) | None = Field(None, description="区划代码（含下级）；不在授权区划内时结果为空")
    status: str | None = Field(None, description="open 未办结、all 或某一状态；不填为全部")
    severity: str | None = None
    ticket_type: str | None = None
    tier: str | None = Field(None, description="处理层级 first/second/vendor")
    assignee: Line(150) | None = Field(None, description="处理人账号；none 为未分派")
    q: Line(120) | None = Field(None, description="工单号、标题或单位")


class SlaOut(Schema):
    state: str = Field(description="overdue 已超时、due_soon 即将超时、paused 已暂停、ok 正常、done 已办结")
    label: str
    clock: str = Field(description="倒计时所依据的时限：响应或解决")
    text: str = Field(description="如“剩余 3小时20分”“超时 1小时5分”（工作时间）")
    due: datetime | None
    remaining_minutes: int | None = Field(description="剩余工作时间（分钟），超时为负")


class QueueTicketOut(TicketOut):
    sla: SlaOut


@router.get(
    "/tickets",
    response=list[QueueTicketOut],
    summary="工单列表（按授权区划，最多 500 条；视图与筛选同工单队列页，含工作时间倒计时）",
)
def list_tickets(
    request, filters: Query[TicketFilter], offset: int = Query(0, ge=0), limit: int = Query(100, ge=1)
):
    from . import queue

    ensure(request.user, Capability.DESK_CREATE, "api:desk.tickets")
    wanted = queue.Filters.from_query(filters.dict(), default_status="all")
    now = timezone.now()
    qs = queue.tickets(request.user, wanted, now)
    if not wanted.open_only:
        qs = qs.order_by("-opened_at", "-pk")
    limit = max(1, min(limit, 500))
    rows = list(qs[offset : offset + limit])
    clocks = queue.Clocks(queue.calendars(), now).load(rows)
    data = [{**ticket_out(t), "sla": clocks.of(t).as_dict()} for t in rows]
    # Written as ninja would write QueueTicketOut (same encoder), without validating 500 rows we built ourselves:
    # that validation was a third of the request (bench/desk.py). test_queue checks the rows against the schema.
    return JsonResponse(data, safe=False, encoder=NinjaJSONEncoder)


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


class ComplaintOut(Schema):
    id: int
    region: str
    region_name: str
    at: datetime
    complainant: str
    description: str
    ticket: str | None
    valid: bool | None
    decided_by: str | None
    decision_note: str


@router.get("/complaints", response=list[ComplaintOut], summary="投诉列表（项目经理，按授权区划）")
def complaints(request, state: str = Query("", pattern=r"^(|pending|valid|invalid)$")):
    from .models import Complaint

    ensure(request.user, Capability.DESK_DECIDE, "api:desk.complaints")
    qs = Complaint.objects.visible_to(request.user).select_related("region", "ticket", "decided_by")
    if state == "pending":
        qs = qs.filter(valid__isnull=True)
    elif state:
        qs = qs.filter(valid=state == "valid")
    return [
        {
            "id": c.pk,
            "region": c.region.code,
            "region_name": c.region.name,
            "at": c.at,
            "complainant": c.complainant,
            "description": c.description,
            "ticket": c.ticket.number if c.ticket else None,
            "valid": c.valid,
            "decided_by": c.decided_by.get_username() if c.decided_by else None,
            "decision_note": c.decision_note,
        }
        for c in qs[:500]
    ]


class RuleIn(Schema):
    severity: Line(4) = ""
    ticket_type: Line(10) = ""
    key_period: Line(30) = ""
    clock: Line(20, required=True)
    minutes: int | None = None
    workdays: int | None = None
    same_day: bool = False
    calendar: Line(30) = "workday"


class PolicyIn(Schema):
    code: Line(30, required=True)
    name: Line(60, required=True)
    source: Line(300) = ""
    warn_ratio: float = 0.8
    regions: list[Line(20)] = []
    rules: list[RuleIn]


def _policy_out(policy) -> dict:
    from .manage_views import may_change

    return {
        "id": policy.pk,
        "code": policy.code,
        "name": policy.name,
        "source": policy.source,
        "warn_ratio": policy.warn_ratio,
        "regions": [r.code for r in policy.regions.all()],
        "rules": [
            {
                "severity": r.severity,
                "ticket_type": r.ticket_type,
                "key_period": r.key_period,
                "clock": r.clock,
                "minutes": r.minutes,
                "workdays": r.workdays,
                "same_day": r.same_day,
                "calendar": r.calendar,
            }
            for r in policy.rules.all()
        ],
        "writable": may_change(policy._user, policy) if hasattr(policy, "_user") else None,
    }


def _save_policy(user, data: PolicyIn, policy=None):
    """The page's form and rule formset validate the API's input too (the same Chinese messages)."""
    from django.http import QueryDict

    from .manage_views import save_policy

    regions = []
    for code in data.regions:
        region = Region.objects.filter(code=code).first()
        if region is None:
            raise ValidationError({"regions": f"区划代码“{code}”不存在"})
        regions.append(region)
    form = QueryDict(mutable=True)
    for key in ("code", "name", "source"):
        form[key] = getattr(data, key)
    form["warn_ratio"] = str(data.warn_ratio)
    form.setlist("regions", [str(r.pk) for r in regions])
    existing = {
        (r.severity, r.ticket_type, r.key_period, r.clock): r.pk
        for r in (policy.rules.all() if policy else [])
    }
    rows = []
    for rule in data.rules:
        row = {k: ("" if v is None else v) for k, v in rule.dict().items()}
        row["same_day"] = "on" if rule.same_day else ""
        row["id"] = existing.pop((rule.severity, rule.ticket_type, rule.key_period, rule.clock), "")
        rows.append(row)
    rows += [{"id": pk, "DELETE": "on"} for pk in existing.values()]  # rules not in the input are removed
    kept = [r for r in rows if r.get("id")]
    rows = kept + [r for r in rows if not r.get("id")]  # bound forms for existing rules come first
    form["rules-TOTAL_FORMS"] = str(len(rows))
    form["rules-INITIAL_FORMS"] = str(len(kept))
    for n, row in enumerate(rows):
        for key, value in row.items():
            form[f"rules-{n}-{key}"] = str(value)
    saved, errors = save_policy(user, form, policy)
    if saved is None:
        policy_form, rules = errors
        problems = {f: "；".join(e) for f, e in policy_form.errors.items()}
        for n, rule_errors in enumerate(rules.errors):
            for f, e in rule_errors.items():
                problems[f"rules[{n}].{f}" if f != "__all__" else f"rules[{n}]"] = "；".join(e)
        if rules.non_form_errors():
            problems["rules"] = "；".join(rules.non_form_errors())
        raise ValidationError(problems)
    return saved


@router.get("/policies", response=list[dict], summary="服务时限策略（项目经理，适用区划全在授权内的）")
def policies(request):
    from .manage_views import visible_policies

    ensure(request.user, Capability.DESK_DECIDE, "api:desk.policies")
    out = []
    for policy in visible_policies(request.user).prefetch_related("regions", "rules"):
        policy._user = request.user
        out.append(_policy_out(policy))
    return out


@router.post("/policies", response={201: dict}, summary="新建服务时限策略（含规则与适用区划）")
def add_policy(request, data: PolicyIn):
    ensure(request.user, Capability.DESK_DECIDE, "api:desk.add_policy")
    policy = _save_policy(request.user, data)
    policy._user = request.user
    return Status(201, _policy_out(policy))


@router.put("/policies/{policy_id}", response=dict, summary="修改服务时限策略（规则整体替换）")
def change_policy(request, data: PolicyIn, policy_id: int = ID):
    from .manage_views import visible_policies

    ensure(request.user, Capability.DESK_DECIDE, "api:desk.change_policy")
    policy = get_object_or_404(visible_policies(request.user), pk=policy_id)
    policy = _save_policy(request.user, data, policy)
    policy._user = request.user
    return _policy_out(policy)


@router.get("/report", summary="运维月报（Word 或 PDF）")
def report(
    request,
    month: str | None = MONTH,
    format: str = Query("docx", pattern=r"^(docx|pdf)$", description="docx（Word，缺省）或 pdf"),  # noqa: A002
):
    from django.http import HttpResponse

    from caiwei.audit.log import record_export

    from .report import content_type, monthly_report

    ensure(request.user, Capability.DESK_VIEW, "api:desk.report")
    try:
        name, data = monthly_report(request.user, month, fmt=format)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    record_export("desk.monthly_report", 1, {"month": month or "", "format": format})
    response = HttpResponse(data, content_type=content_type(format))
    response["Content-Disposition"] = f'attachment; filename="monthly-report.{format}"'
    return response
