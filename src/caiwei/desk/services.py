"""Service-desk operations with their rules in one place; pages, the API and commands call these."""

from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.bizcalendar.engine import end_of_business_day
from caiwei.bizcalendar.models import BusinessCalendar
from caiwei.bizcalendar.services import parse_instant
from caiwei.inputs import text_problem
from caiwei.regions.scoping import visible_regions

from . import flow, outbox
from .files import check_attachment, check_content
from .models import (
    Complaint,
    HotlineCall,
    Notification,
    SlaPolicy,
    SlaRule,
    Survey,
    Ticket,
    TicketAssignment,
    TicketAttachment,
    TicketChange,
    TicketComment,
    VendorFollowUp,
    VendorOrder,
)
from .presets import PRESETS
from .sla import Ticket as SlaTicket
from .sla import evaluate, queue_instants

DEFAULT_PRESET = "xilingol"
# The stored instants recomputed from a ticket's history (the queue sorts and filters on them).
DUE_FIELDS = ["due_first_response", "due_resolution", "sla_warn_at", "sla_overdue_at"]
VENDOR_DUE_MAX_DAYS = 366  # a vendor's answer is due within a year (pages and API)
EARLIEST_CALL = date(2000, 1, 1)


def check_text(field: str, label: str, value: str, max_length: int, multiline: bool = True) -> str:
    """Refuse text a field cannot hold (control characters, NUL, too long) instead of storing or cutting it."""
    problem = text_problem(value, multiline=multiline)
    if problem is None and len(value) > max_length:
        problem = f"最多 {max_length} 个字符（现有 {len(value)} 个）"
    if problem:
        raise ValidationError({field: f"{label}：{problem}"})
    return value


def check_call_time(at: datetime) -> datetime:
    """来电时间 within 2000-01-01 and a day from now: a year-1 or year-9999 call is a typing slip."""
    earliest = timezone.make_aware(datetime.combine(EARLIEST_CALL, datetime.min.time()))
    latest = timezone.now() + timedelta(days=1)
    if not earliest <= at <= latest:
        raise ValidationError(
            {
                "at": f"来电时间应在 {EARLIEST_CALL:%Y-%m-%d} 至 {timezone.localtime(latest):%Y-%m-%d %H:%M} 之间"
            }
        )
    return at


def visible_tickets(user):
    """Region scoping for everyone; budget units and banks see only the tickets they raised."""
    qs = Ticket.objects.visible_to(user).select_related("region", "assignee", "policy")
    if not user.can(Capability.DESK_VIEW):
        qs = qs.filter(requester=user)
    return qs


def public_comments(user, ticket):
    """What ``user`` may read of the conversation: workers see internal notes, everyone else only replies."""
    qs = ticket.comments.all()
    return qs if user.can(Capability.DESK_WORK) else qs.filter(internal=False)


def visible_attachments(user, ticket):
    """Files of internal notes stay with the O&M team, like the notes themselves."""
    qs = ticket.attachments.all()
    if user.can(Capability.DESK_WORK):
        return qs
    return qs.filter(Q(comment__isnull=True) | Q(comment__internal=False))


def calendars() -> dict:
    specs = {c.code: c.spec() for c in BusinessCalendar.objects.prefetch_related("days")}
    missing = {"workday", "always"} - set(specs)
    if missing:
        raise ValidationError(f"缺少业务日历：{'、'.join(sorted(missing))}")
    return specs


@transaction.atomic
def apply_preset(code: str) -> SlaPolicy:
    """Create or reset the policy ``code`` from the seed contract's service levels (one click on the page)."""
    preset = PRESETS.get(code)
    if preset is None:
        raise ValidationError(f"未知的服务时限预设“{code}”，可选：{'、'.join(PRESETS)}")
    policy, _ = SlaPolicy.objects.update_or_create(
        code=code, defaults={"name": preset.name, "source": preset.source, "warn_ratio": preset.warn_ratio}
    )
    policy.rules.all().delete()
    for rule in preset.rules:
        for severity in sorted(rule.severities or {""}):
            for ticket_type in sorted(rule.types or {""}):
                for clock, target in rule.targets.items():
                    SlaRule.objects.create(
                        policy=policy,
                        severity=severity,
                        ticket_type=ticket_type,
                        key_period=rule.key_period or "",
                        clock=clock,
                        minutes=target.minutes,
                        workdays=target.workdays,
                        same_day=target.same_day,
                        calendar=target.calendar,
                    )
    return policy


def default_policy() -> SlaPolicy:
    return SlaPolicy.objects.filter(code=DEFAULT_PRESET).first() or apply_preset(DEFAULT_PRESET)


def policy_for(region) -> SlaPolicy:
    """The policy of the nearest region up the tree that has one (a county before its league), else the default."""
    codes = [c for c in region.path.split("/") if c]
    for code in reversed(codes):
        policy = SlaPolicy.objects.filter(regions__code=code).order_by("pk").first()
        if policy is not None:
            return policy
    return default_policy()


def due(preset: str, severity: str, ticket_type: str, opened: str | datetime) -> dict[str, str | None]:
    """Due instants of a preset's clocks for a ticket opened at ``opened`` (the `caiwei desk due` command)."""
    policy = PRESETS.get(preset)
    if policy is None:
        raise ValidationError(f"未知的服务时限预设“{preset}”，可选：{'、'.join(PRESETS)}")
    start = parse_instant(opened, "opened")
    try:
        states = evaluate(policy, calendars(), SlaTicket(start, severity, ticket_type), start)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    return {clock: state.due.isoformat() if state.due else None for clock, state in states.items()}


def clock_states(ticket: Ticket, now: datetime | None = None, specs: dict | None = None) -> dict:
    """The SLA clocks of a stored ticket, from its status history."""
    line = flow.timeline(c.as_flow() for c in ticket.changes.all())
    sla_ticket = SlaTicket(
        ticket.opened_at,
        ticket.severity,
        ticket.ticket_type,
        responded_at=line.responded_at,
        last_update_at=None,
        resolved_at=line.resolved_at,
        pauses=line.pauses,
        reopened_at=line.reopened_at,
        resolved_history=line.resolved_history,
    )
    return evaluate(ticket.policy.engine(), specs or calendars(), sla_ticket, now or timezone.now())


def _refresh_due(ticket: Ticket) -> None:
    """Recompute the stored due times (used to sort the queue) from the ticket's history."""
    states = clock_states(ticket)
    ticket.due_first_response = states["first_response"].due
    ticket.due_resolution = states["resolution"].due
    ticket.sla_warn_at, ticket.sla_overdue_at = queue_instants(states)


def _next_number(now: datetime) -> str:
    prefix = f"GD{timezone.localtime(now):%Y%m%d}"
    last = (
        Ticket.objects.filter(number__startswith=prefix)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return f"{prefix}{int(last[-4:]) + 1 if last else 1:04d}"


def create_ticket(user, *, region, **fields) -> Ticket:
    """登记工单: the region must be one the user sees; a number is given; the SLA due times are set."""
    ensure(user, Capability.DESK_CREATE, "desk.create")
    if not visible_regions(user).filter(pk=region.pk).exists():
        raise PermissionDenied(f"无权在区划“{region.name}”登记工单")
    requester = None
    # Units, banks and finance sections ask for themselves: they follow and answer their tickets.
    if (
        user.has_role("unit_user", "bank_user", "finance_staff", "finance_approver")
        and not user.can(Capability.DESK_WORK)
        and fields.get("requester") is None
        and fields.get("requester_id") is None
    ):
        requester = user
    return _save_new(region, user, requester, fields)


def system_ticket(*, region, **fields) -> Ticket:
    """A ticket the platform opens itself from the worker, with no account (a scheduled backup that failed): the
    same numbering, policy and SLA due times as 登记工单; the caller names what raised it in ``requester_name``."""
    return _save_new(region, None, None, fields)


def _save_new(region, created_by, requester, fields) -> Ticket:
    fields.setdefault("policy", policy_for(region))
    for _ in range(5):  # two agents saving at once may draw the same number: draw again
        try:
            with transaction.atomic():
                ticket = Ticket(
                    region=region, created_by=created_by, number=_next_number(timezone.now()), **fields
                )
                if requester is not None:
                    ticket.requester = requester
                ticket.full_clean()
                ticket.save()
                _refresh_due(ticket)
                ticket.save(update_fields=DUE_FIELDS)
                return ticket
        except IntegrityError:
            continue
    raise ValidationError("工单号分配冲突，请重试")


@transaction.atomic
def change_status(user, ticket: Ticket, target: str, note: str = "") -> Ticket:
    """状态流转, recorded with who and when; the clocks follow the history."""
    ensure(user, Capability.DESK_WORK, "desk.change_status")
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    try:
        flow.check_transition(ticket.status, target)
    except flow.TransitionError as exc:
        raise ValidationError(str(exc)) from exc
    _record_change(user, ticket, target, note)
    return ticket


def _check_requester_reply(user, ticket: Ticket) -> None:
    """Those who do not work tickets write only on tickets they raised, and only while they are open."""
    if user.can(Capability.DESK_WORK):
        return
    if ticket.requester_id != user.pk:
        raise PermissionDenied("只能回复自己提出的工单")
    if not ticket.is_open:
        raise ValidationError(
            f"工单已{flow.STATUS_LABELS[ticket.status]}，不能再回复；如问题仍未解决，请选择“不认可”或提交新问题"
        )


def comment(user, ticket: Ticket, body: str, internal: bool = False, files=()) -> TicketComment:
    """A reply or internal note with its files: every file is checked first, then all are saved or none.

    The requester's reply to a ticket 等待用户 starts its clocks again (flow.after_requester_reply), in the same
    transaction; the assignee hears of every reply from the requester.
    """
    ensure(user, Capability.DESK_WORK if internal else Capability.DESK_CREATE, "desk.comment")
    _check_requester_reply(user, ticket)
    if not body.strip():
        raise ValidationError({"body": "内容不能为空"})
    if "\x00" in body:
        raise ValidationError({"body": "内容含空字符（\\x00），请删除后重试"})
    checked = read_uploads(files)
    saved: list[str] = []
    try:
        with transaction.atomic():
            note = TicketComment.objects.create(
                ticket=ticket, author=user, body=body.strip(), internal=internal
            )
            for name, data, content_type in checked:
                item = TicketAttachment(
                    ticket=ticket, comment=note, name=name, size=len(data), content_type=content_type
                )
                store_file(item, data, saved)
            if not internal and ticket.requester_id == user.pk:
                _after_requester_reply(user, ticket, note)
    except BaseException:
        discard(saved)
        raise
    return note


def _after_requester_reply(user, ticket: Ticket, note: TicketComment) -> None:
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    target = flow.after_requester_reply(locked.status)
    if target is not None:
        _record_change(user, locked, target)
        ticket.status, ticket.due_first_response, ticket.due_resolution = (
            locked.status,
            locked.due_first_response,
            locked.due_resolution,
        )
    if locked.assignee_id and locked.assignee_id != user.pk:
        resumed = "，工单恢复处理、服务时限恢复计时" if target is not None else ""
        notify(locked.assignee, f"提出人回复了工单 {locked.number}（{locked.title}）{resumed}", locked)


@transaction.atomic
def assign(user, ticket: Ticket, assignee, tier: str | None = None) -> Ticket:
    ensure(user, Capability.DESK_WORK, "desk.assign")
    if assignee is not None and not assignee.can(Capability.DESK_WORK):
        raise ValidationError({"assignee": f"{assignee} 不是运维处理人员"})
    if assignee is not None and not Ticket.objects.visible_to(assignee).filter(pk=ticket.pk).exists():
        # A worker of another region would hold a ticket they cannot open (and get its notices).
        raise ValidationError({"assignee": f"{assignee} 的授权区划不含该工单所在区划，不能分派给他"})
    if tier and tier not in Ticket.Tier.values:
        raise ValidationError({"tier": f"处理层级“{tier}”不正确，应为 {'、'.join(Ticket.Tier.labels)} 之一"})
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    record_assignment(user, locked, assignee, tier or locked.tier)
    ticket.assignee, ticket.tier = locked.assignee, locked.tier  # the caller's copy follows
    return ticket


def record_assignment(user, ticket: Ticket, assignee, tier: str) -> TicketAssignment | None:
    """Hand ``ticket`` (locked by the caller) to ``assignee`` on ``tier`` and keep who did it, from whom, to whom.

    None when nothing changes. ``user`` None is the system (an escalation rule).
    """
    if assignee == ticket.assignee and tier == ticket.tier:
        return None
    record = TicketAssignment.objects.create(
        ticket=ticket,
        by=user,
        from_user=ticket.assignee,
        to_user=assignee,
        old_tier=ticket.tier,
        new_tier=tier,
    )
    ticket.assignee, ticket.tier = assignee, tier
    ticket.save(update_fields=["assignee", "tier"])
    if assignee is not None and assignee != user:
        notify(assignee, f"工单 {ticket.number}（{ticket.title}）已分派给您", ticket)
    return record


def log_call(
    user,
    *,
    region,
    at: datetime | None = None,
    answered: bool,
    caller_number: str,
    caller_name: str = "",
    caller_org: str = "",
    summary: str = "",
    ticket: Ticket | None = None,
) -> HotlineCall:
    """登记来电. A missed call gets a callback due at the close of that business day (seed 003: same day)."""
    ensure(user, Capability.DESK_WORK, "desk.log_call")
    if not visible_regions(user).filter(pk=region.pk).exists():
        raise PermissionDenied(f"无权在区划“{region.name}”登记来电")
    at = check_call_time(at) if at else timezone.now()
    call = HotlineCall(
        region=region,
        at=at,
        answered=answered,
        caller_number=caller_number,
        caller_name=caller_name,
        caller_org=caller_org,
        summary=summary,
        ticket=ticket,
        agent=user,
    )
    if not answered:
        call.callback_due = end_of_business_day(calendars()["workday"], at)
    call.full_clean()
    call.save()
    return call


@transaction.atomic
def call_back(user, call: HotlineCall, summary: str = "") -> HotlineCall:
    ensure(user, Capability.DESK_WORK, "desk.call_back")
    check_text("summary", "回拨情况", summary, 300)
    if call.answered:
        raise ValidationError("该来电已接听，无需回拨")
    if call.callback_at is not None:
        raise ValidationError(f"该来电已于 {timezone.localtime(call.callback_at):%m-%d %H:%M} 回拨")
    call.callback_at, call.callback_by = timezone.now(), user
    call.callback_note = summary
    call.save()
    return call


def _own(user, ticket: Ticket) -> None:
    if ticket.requester_id != user.pk:
        raise PermissionDenied("只能确认或评价自己提出的工单")


def _record_change(user, ticket: Ticket, target: str, note: str = "") -> None:
    """Append the change to the history, stamp the ticket's milestones and recompute its due times."""
    check_text("note", "说明", note, 300)
    now = timezone.now()
    if ticket.responded_at is None and target != flow.NEW:
        ticket.responded_at = now
    TicketChange.objects.create(
        ticket=ticket, at=now, old_status=ticket.status, new_status=target, by=user, note=note
    )
    if target == flow.RESOLVED:
        ticket.resolved_at = now
    elif target == flow.CLOSED:
        ticket.closed_at = now
    elif flow.is_reopen(ticket.status, target):
        ticket.resolved_at = ticket.closed_at = None
    ticket.status = target
    if note:
        TicketComment.objects.create(ticket=ticket, author=user, body=note)
    _refresh_due(ticket)
    ticket.save()


@transaction.atomic
def requester_confirm(user, ticket: Ticket, accepted: bool, note: str = "") -> Ticket:
    """提出人确认: accepting a proposed solution resolves it (or closes a resolved ticket); rejecting reopens it."""
    _own(user, ticket)
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status not in (flow.CONFIRMING, flow.RESOLVED):
        raise ValidationError(f"工单处于“{flow.STATUS_LABELS[ticket.status]}”，无需确认")
    if accepted:
        target = flow.RESOLVED if ticket.status == flow.CONFIRMING else flow.CLOSED
    else:
        if not note.strip():
            raise ValidationError({"note": "不认可时请说明原因"})
        target = flow.IN_PROGRESS
    _record_change(user, ticket, target, note)
    return ticket


@transaction.atomic
def rate(user, ticket: Ticket, score: int, comment: str = "") -> Survey:
    """满意度评价, once per ticket, after it is resolved."""
    _own(user, ticket)
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status not in (flow.RESOLVED, flow.CLOSED):
        raise ValidationError("工单解决后才能评价")
    if Survey.objects.filter(ticket=ticket).exists():
        raise ValidationError("该工单已评价")
    if score not in range(1, 6):
        raise ValidationError({"score": "评分应为 1～5"})
    check_text("comment", "评价意见", comment, 500)
    return Survey.objects.create(ticket=ticket, score=score, comment=comment, by=user)


def satisfaction_by_region(surveys) -> list[dict]:
    """满意率 per region (4 and 5 count as satisfied) against the contract's 90 % per county."""
    rows: dict[str, dict] = {}
    for survey in surveys.select_related("ticket__region"):
        region = survey.ticket.region
        row = rows.setdefault(
            region.code, {"region": region.name, "code": region.code, "count": 0, "satisfied": 0}
        )
        row["count"] += 1
        row["satisfied"] += survey.satisfied
    for row in rows.values():
        row["rate"] = row["satisfied"] / row["count"]
    return sorted(rows.values(), key=lambda r: r["code"])


@transaction.atomic
def decide_complaint(user, complaint: Complaint, valid: bool, note: str = "") -> Complaint:
    ensure(user, Capability.DESK_DECIDE, "desk.decide_complaint")
    check_text("note", "认定说明", note, 300)
    complaint.valid, complaint.decided_by, complaint.decision_note = valid, user, note
    complaint.save()
    return complaint


def complaints_per_region(complaints, year: int) -> list[dict]:
    """Valid complaints per region in a year, flagged at the contract's breach threshold."""
    counts: dict[str, dict] = {}
    for c in complaints.filter(at__year=year, valid=True).select_related("region"):
        row = counts.setdefault(c.region.code, {"region": c.region.name, "code": c.region.code, "valid": 0})
        row["valid"] += 1
    for row in counts.values():
        row["breach"] = row["valid"] >= Complaint.BREACH_THRESHOLD
    return sorted(counts.values(), key=lambda r: r["code"])


@transaction.atomic
def to_vendor(
    user, ticket: Ticket, *, reference: str, due, vendor: str = "省级开发团队", note: str = ""
) -> VendorOrder:
    """转厂商: open a vendor work order with the vendor's reference; the ticket moves to the vendor tier."""
    ensure(user, Capability.DESK_WORK, "desk.to_vendor")
    if not reference.strip():
        raise ValidationError({"reference": "请填写厂商单号"})
    check_text("reference", "厂商单号", reference.strip(), 60, multiline=False)
    check_text("vendor", "厂商", vendor, 80, multiline=False)
    check_text("note", "跟进情况", note, 500)
    if due is None or due < timezone.localdate():
        raise ValidationError({"due": "要求答复日期不能早于今天"})
    if due > timezone.localdate() + timedelta(days=VENDOR_DUE_MAX_DAYS):
        raise ValidationError({"due": "要求答复日期不能晚于一年之后"})
    if VendorOrder.objects.filter(vendor=vendor, reference=reference.strip()).exists():
        raise ValidationError({"reference": f"厂商单号“{reference}”已登记"})
    order = VendorOrder.objects.create(
        ticket=ticket, vendor=vendor, reference=reference.strip(), due=due, created_by=user
    )
    VendorFollowUp.objects.create(order=order, by=user, note=note or "已提交厂商", status=order.status)
    ticket.tier = Ticket.Tier.VENDOR
    ticket.save(update_fields=["tier"])
    return order


@transaction.atomic
def follow_up(user, order: VendorOrder, note: str, status: str) -> VendorFollowUp:
    ensure(user, Capability.DESK_WORK, "desk.follow_up")
    if status not in VendorOrder.Status.values:
        raise ValidationError({"status": f"未知的厂商工单状态“{status}”"})
    if not note.strip():
        raise ValidationError({"note": "请填写跟进情况"})
    check_text("note", "跟进情况", note.strip(), 500)
    order.status = status
    order.save(update_fields=["status"])
    return VendorFollowUp.objects.create(order=order, by=user, note=note.strip(), status=status)


def read_uploads(uploads) -> list[tuple[str, bytes, str]]:
    """Check every uploaded file by name, size and content before anything is written.

    Raises one ValidationError naming each refused file, so a batch is saved whole or not at all.
    """
    checked, errors = [], []
    for upload in uploads:
        name = upload.name or ""
        reason = check_attachment(name, upload.size or 0)
        if reason is None:
            upload.seek(0)
            data = upload.read()
            reason = check_content(name, data)
        if reason:
            errors.append(reason)
        else:
            checked.append((name, data, (getattr(upload, "content_type", "") or "")[:100]))
    if errors:
        raise ValidationError([f"未保存任何附件：{errors[0]}", *errors[1:]])
    return checked


def store_file(item: TicketAttachment, data: bytes, saved: list[str]) -> TicketAttachment:
    """Write the file and its row; ``saved`` collects stored names so a rolled-back caller can remove them."""
    from django.core.files.base import ContentFile

    item.file.save(item.name, ContentFile(data), save=False)
    saved.append(item.file.name)
    item.save()
    return item


def discard(saved: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in saved:
        default_storage.delete(name)


def attach_files(user, ticket: Ticket, uploads) -> list[TicketAttachment]:
    """上传附件 without a comment: all files pass the checks and are saved, or none is."""
    ensure(user, Capability.DESK_CREATE, "desk.attach")
    _check_requester_reply(user, ticket)
    checked = read_uploads(uploads)
    if not checked:
        raise ValidationError("请选择要上传的文件")
    saved: list[str] = []
    try:
        with transaction.atomic():
            return [
                store_file(
                    TicketAttachment(ticket=ticket, name=name, size=len(data), content_type=content_type),
                    data,
                    saved,
                )
                for name, data, content_type in checked
            ]
    except BaseException:
        discard(saved)
        raise


def attach(user, ticket: Ticket, upload) -> TicketAttachment:
    """One file; see ``attach_files``."""
    return attach_files(user, ticket, [upload])[0]


def notify(user, text: str, ticket: Ticket | None = None) -> Notification:
    """站内通知, and an e-mail (queued in the outbox) when CAIWEI_NOTIFY_EMAIL is on and the user has an address."""
    from django.conf import settings

    note = Notification.objects.create(user=user, ticket=ticket, text=text[:300])
    if getattr(settings, "CAIWEI_NOTIFY_EMAIL", False) and user.email:
        outbox.queue(user.email, f"[财维] {text[:60]}", text, ticket)
    return note


def remind_surveys(now: datetime | None = None) -> int:
    """Remind requesters once to rate tickets resolved more than a business day ago."""
    now = now or timezone.now()
    workday = calendars()["workday"]
    count = 0
    pending = Ticket.objects.filter(
        status__in=[flow.RESOLVED, flow.CLOSED],
        survey__isnull=True,
        survey_reminded_at__isnull=True,
        requester__isnull=False,
        resolved_at__isnull=False,
    ).select_related("requester")
    for ticket in pending:
        if end_of_business_day(workday, ticket.resolved_at) < now:
            notify(ticket.requester, f"请为工单 {ticket.number}（{ticket.title}）的处理情况评价", ticket)
            Ticket.objects.filter(pk=ticket.pk).update(survey_reminded_at=now)
            count += 1
    return count


def refresh_due(ticket: Ticket) -> None:
    _refresh_due(ticket)
    ticket.save(update_fields=DUE_FIELDS)


@transaction.atomic
def register_complaint(
    user, *, region, complainant: str, description: str, ticket: Ticket | None = None
) -> Complaint:
    """登记投诉 (any O&M staff); validity is the project manager's decision."""
    ensure(user, Capability.DESK_WORK, "desk.register_complaint")
    if not visible_regions(user).filter(pk=region.pk).exists():
        raise PermissionDenied(f"无权在区划“{region.name}”登记投诉")
    if not complainant.strip() or not description.strip():
        raise ValidationError("投诉人与投诉内容不能为空")
    return Complaint.objects.create(
        region=region, complainant=complainant.strip(), description=description.strip(), ticket=ticket
    )
