"""工单时间线: every event of a ticket in time order, built from the records that already hold them.

Opened (the ticket), assignments (TicketAssignment), status changes with the clock pauses and resumes they imply
(TicketChange into and out of 等待用户), replies and internal notes (TicketComment), attachments, hotline calls,
mail taken in and mail sent, escalations, vendor orders and their follow-ups, and the survey.

Each event carries the audience that may read it: ``public`` (whoever may open the ticket, the requester
included), ``view`` (the O&M team and the finance bureau) or ``work`` (the O&M team: internal notes and their
files, calls, outgoing mail, escalations, vendor orders). What a user is shown is filtered here, once, for the page
and the API alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from caiwei.accounts.roles import Capability

from . import flow
from .models import (
    Escalation,
    HotlineCall,
    MailIntake,
    OutgoingMail,
    Survey,
    Ticket,
    TicketAttachment,
    TicketComment,
    VendorFollowUp,
)

PUBLIC, VIEW, WORK = "public", "view", "work"

KIND_LABELS = {
    "opened": "受理",
    "assigned": "分派",
    "status": "状态变更",
    "paused": "暂停计时",
    "resumed": "恢复计时",
    "reply": "回复",
    "requester_reply": "提出人回复",
    "note": "内部备注",
    "attachment": "附件",
    "call": "来电",
    "mail_in": "收到邮件",
    "mail_out": "发出邮件",
    "escalation": "升级",
    "vendor": "厂商工单",
    "survey": "满意度评价",
}
# Events of one instant: the cause before what follows from it.
_RANK = {kind: i for i, kind in enumerate(KIND_LABELS)}


@dataclass
class Event:
    at: datetime
    kind: str
    text: str
    actor: str = ""
    audience: str = PUBLIC
    link: str = ""
    data: dict = field(default_factory=dict)
    seq: int = 0

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def internal(self) -> bool:
        return self.audience == WORK

    def as_dict(self) -> dict:
        return {
            "at": self.at,
            "kind": self.kind,
            "label": self.label,
            "text": self.text,
            "actor": self.actor,
            "internal": self.internal,
            "data": self.data,
        }


def _name(user) -> str:
    return str(user) if user is not None else ""


def _username(user) -> str | None:
    return user.username if user is not None else None


def _tier(code: str) -> str:
    return Ticket.Tier(code).label if code in Ticket.Tier.values else code


def _audiences(user) -> set[str]:
    allowed = {PUBLIC}
    if user.can(Capability.DESK_VIEW):
        allowed.add(VIEW)
    if user.can(Capability.DESK_WORK):
        allowed.add(WORK)
    return allowed


def events(ticket: Ticket, user) -> list[Event]:
    """The ticket's events that ``user`` may read, oldest first (ties: cause before effect, then creation)."""
    allowed = _audiences(user)
    found = [e for e in _collect(ticket, allowed) if e.audience in allowed]
    found.sort(key=lambda e: (e.at, _RANK[e.kind], e.seq))
    return found


def _collect(ticket: Ticket, allowed: set[str]):
    yield Event(
        ticket.opened_at,
        "opened",
        f"经{ticket.get_channel_display()}受理："
        + " ".join(p for p in (ticket.requester_org, ticket.requester_name) if p),
        _name(ticket.created_by),
        link=reverse("desk:detail", args=[ticket.number]),
    )
    for a in ticket.assignments.select_related("by", "from_user", "to_user"):
        text = f"{_name(a.from_user) or '未分派'} → {_name(a.to_user) or '未分派'}"
        if a.old_tier != a.new_tier:
            text += f"（{_tier(a.old_tier)} → {_tier(a.new_tier)}）"
        yield Event(
            a.at,
            "assigned",
            text,
            _name(a.by) or "系统",
            VIEW,
            data={
                "by": _username(a.by),
                "from": _username(a.from_user),
                "to": _username(a.to_user),
                "old_tier": a.old_tier,
                "new_tier": a.new_tier,
            },
            seq=a.pk,
        )
    for c in ticket.changes.select_related("by"):
        old, new = flow.STATUS_LABELS.get(c.old_status, c.old_status), c.new_label
        kind, text = "status", f"{old} → {new}"
        if c.new_status == flow.WAITING:
            kind, text = "paused", f"{old} → {new}：服务时限暂停计时"
        elif c.old_status == flow.WAITING:
            kind, text = "resumed", f"{old} → {new}：服务时限恢复计时"
        yield Event(
            c.at,
            kind,
            text,
            _name(c.by) or "系统",
            data={"from": c.old_status, "to": c.new_status},
            seq=c.pk,
        )
    comments = TicketComment.objects.filter(ticket=ticket).select_related("author")
    if WORK not in allowed:
        comments = comments.filter(internal=False)
    for c in comments:
        kind = (
            "note" if c.internal else ("requester_reply" if c.author_id == ticket.requester_id else "reply")
        )
        yield Event(c.at, kind, c.body, _name(c.author) or "系统", WORK if c.internal else PUBLIC, seq=c.pk)
    for f in TicketAttachment.objects.filter(ticket=ticket).select_related("comment"):
        internal = f.comment is not None and f.comment.internal
        yield Event(
            f.at,
            "attachment",
            f.name,
            "",
            WORK if internal else PUBLIC,
            link=reverse("desk:attachment", args=[ticket.number, f.pk]),
            data={"id": f.pk, "name": f.name, "size": f.size},
            seq=f.pk,
        )
    if WORK in allowed:
        yield from _work_events(ticket)
    if VIEW in allowed:
        for m in MailIntake.objects.filter(ticket=ticket, status=MailIntake.Status.DONE):
            action = "受理为新工单" if m.created_ticket else "追加到工单"
            yield Event(m.at, "mail_in", f"{m.sender}：{m.subject}（{action}）", m.sender, VIEW, seq=m.pk)
    for s in Survey.objects.filter(ticket=ticket).select_related("by"):
        yield Event(s.at, "survey", f"{s.score} 分 {s.comment}".strip(), _name(s.by), data={"score": s.score})


def _work_events(ticket: Ticket):
    for call in HotlineCall.objects.filter(ticket=ticket).select_related("agent"):
        state = "已接听" if call.answered else "未接"
        if call.callback_at is not None:
            state += f"，{timezone.localtime(call.callback_at):%m-%d %H:%M} 已回拨"
        yield Event(
            call.at,
            "call",
            " ".join(p for p in (call.caller_number, call.caller_name, call.caller_org) if p)
            + f"（{state}）{call.summary}",
            _name(call.agent),
            WORK,
            link=f"{reverse('desk:calls')}?call={call.pk}",
            data={"id": call.pk, "answered": call.answered},
            seq=call.pk,
        )
    for m in OutgoingMail.objects.filter(ticket=ticket):
        yield Event(
            m.created_at,
            "mail_out",
            f"至 {m.to}：{m.subject}（{m.get_status_display()}）",
            "",
            WORK,
            data={"status": m.status},
            seq=m.pk,
        )
    for e in Escalation.objects.filter(ticket=ticket).select_related("rule"):
        yield Event(e.at, "escalation", f"{e.rule.name}：{e.detail}", "系统", WORK, seq=e.pk)
    for f in VendorFollowUp.objects.filter(order__ticket=ticket).select_related("order", "by"):
        yield Event(
            f.at,
            "vendor",
            f"{f.order.vendor} {f.order.reference}：{f.note}（{f.get_status_display()}）",
            _name(f.by),
            WORK,
            seq=f.pk,
        )
