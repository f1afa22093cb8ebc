"""Ticket status flow 工单状态流转 and the clock stops it implies. Plain Python (no Django).

新建 → 已响应 → 处理中 → 待用户确认 → 已解决 → 已关闭; 等待用户 pauses the clocks; a resolved or closed ticket can be
reopened (重新打开 → 处理中).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .sla import Interval

NEW, RESPONDED, IN_PROGRESS, WAITING, CONFIRMING, RESOLVED, CLOSED = (
    "new",
    "responded",
    "in_progress",
    "waiting",
    "confirming",
    "resolved",
    "closed",
)
STATUS_LABELS = {
    NEW: "新建",
    RESPONDED: "已响应",
    IN_PROGRESS: "处理中",
    WAITING: "等待用户",
    CONFIRMING: "待用户确认",
    RESOLVED: "已解决",
    CLOSED: "已关闭",
}
TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({RESPONDED, WAITING, RESOLVED}),
    RESPONDED: frozenset({IN_PROGRESS, WAITING, CONFIRMING, RESOLVED}),
    IN_PROGRESS: frozenset({WAITING, CONFIRMING, RESOLVED}),
    WAITING: frozenset({IN_PROGRESS, RESPONDED}),
    CONFIRMING: frozenset({RESOLVED, IN_PROGRESS}),
    RESOLVED: frozenset({CLOSED, IN_PROGRESS}),
    CLOSED: frozenset({IN_PROGRESS}),
}
OPEN_STATUSES = frozenset({NEW, RESPONDED, IN_PROGRESS, WAITING, CONFIRMING})


class TransitionError(ValueError):
    """A status change the flow does not allow, with the reason in Chinese."""


def check_transition(current: str, target: str) -> None:
    if target not in STATUS_LABELS:
        raise TransitionError(f"未知的状态“{target}”")
    if target not in TRANSITIONS[current]:
        allowed = "、".join(
            STATUS_LABELS[s] for s in sorted(TRANSITIONS[current], key=list(STATUS_LABELS).index)
        )
        raise TransitionError(
            f"工单处于“{STATUS_LABELS[current]}”，不能改为“{STATUS_LABELS[target]}”（可改为：{allowed}）"
        )


def after_requester_reply(current: str) -> str | None:
    """The status the requester's reply moves a ticket to, or None: their answer ends 等待用户 (the clocks run again
    from the reply; the pause is not counted) and the ticket is 处理中 again."""
    return IN_PROGRESS if current == WAITING else None


def is_reopen(current: str, target: str) -> bool:
    return current in (RESOLVED, CLOSED) and target == IN_PROGRESS


@dataclass(frozen=True)
class Change:
    at: datetime
    old: str
    new: str


@dataclass
class Timeline:
    """What the SLA evaluator needs, derived from a ticket's status changes."""

    responded_at: datetime | None
    resolved_at: datetime | None
    pauses: list[Interval]
    resolved_history: list[datetime]
    reopened_at: list[datetime]


def timeline(changes: Iterable[Change]) -> Timeline:
    responded_at = resolved_at = None
    pauses: list[Interval] = []
    resolved_history: list[datetime] = []
    reopened_at: list[datetime] = []
    waiting_since: datetime | None = None
    for change in sorted(changes, key=lambda c: c.at):
        if change.new != NEW and responded_at is None:
            responded_at = change.at  # any first action on the ticket answers it
        if change.new == WAITING:
            waiting_since = change.at
        elif change.old == WAITING and waiting_since is not None:
            pauses.append(Interval(waiting_since, change.at))
            waiting_since = None
        if change.new == RESOLVED:
            resolved_at = change.at
        if is_reopen(change.old, change.new):
            if resolved_at is not None:
                resolved_history.append(resolved_at)
            reopened_at.append(change.at)
            resolved_at = None
    if waiting_since is not None:
        pauses.append(Interval(waiting_since, None))
    return Timeline(responded_at, resolved_at, pauses, resolved_history, reopened_at)
