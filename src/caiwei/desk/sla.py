"""SLA evaluator 服务时限: due times and state of a ticket's clocks on the business calendar.

Plain Python over the calendar engine (no Django). A policy is data: rules matching severity and type give each
clock (first response, next update, resolution) a target in business minutes on a named calendar, in whole
workdays, or "the same business day"; rules tied to a key period (年结 ...) win while the ticket was opened in it.
Clocks stop while the ticket waits for the requester and between resolution and a reopen.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from caiwei.bizcalendar.engine import (
    CalendarSpec,
    add_business_time,
    business_time_between,
    end_of_business_day,
    is_business_day,
    key_periods_at,
    next_business_instant,
)

CLOCKS = ("first_response", "update", "resolution")
SEVERITIES = ("重大", "紧急", "一般")
TYPES = (
    "咨询",
    "操作指导",
    "故障",
    "缺陷",
    "需求",
    "数据查询",
    "数据变更",
    "权限变更",
    "基础数据维护",
    "培训",
)


@dataclass(frozen=True)
class Target:
    """One clock's target: ``minutes`` of business time on ``calendar``, or ``workdays``, or the same business day."""

    minutes: int | None = None
    calendar: str = "workday"
    workdays: int | None = None
    same_day: bool = False

    def __post_init__(self) -> None:
        if (
            sum(
                x is not None and x is not False for x in (self.minutes, self.workdays, self.same_day or None)
            )
            != 1
        ):
            raise ValueError("a target has exactly one of minutes, workdays, same_day")

    def describe(self) -> str:
        unit = "7×24" if self.calendar == "always" else "工作时间"
        if self.same_day:
            return "当日（工作日下班前）"
        if self.workdays is not None:
            return f"{self.workdays} 个工作日"
        hours, minutes = divmod(self.minutes or 0, 60)
        text = (
            f"{hours} 小时"
            if not minutes
            else (f"{self.minutes} 分钟" if not hours else f"{hours} 小时 {minutes} 分")
        )
        return f"{text}（{unit}）"


@dataclass(frozen=True)
class Rule:
    """Targets for the tickets it matches; None matches any severity or type."""

    targets: Mapping[str, Target]
    severities: frozenset[str] | None = None
    types: frozenset[str] | None = None
    key_period: str | None = None

    def matches(self, severity: str, ticket_type: str, periods: set[str]) -> bool:
        return (
            (self.severities is None or severity in self.severities)
            and (self.types is None or ticket_type in self.types)
            and (self.key_period is None or self.key_period in periods)
        )

    def specificity(self) -> tuple[int, int, int]:
        return (self.key_period is not None, self.types is not None, self.severities is not None)


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    rules: tuple[Rule, ...]
    warn_ratio: float = 0.8
    source: str = ""

    def targets(
        self, severity: str, ticket_type: str, periods: Iterable[str] = ()
    ) -> dict[str, Target | None]:
        """For each clock, the target of the most specific matching rule (key period > type > severity)."""
        if severity not in SEVERITIES:
            raise ValueError(f"未知的严重程度“{severity}”，应为 {'、'.join(SEVERITIES)}")
        if ticket_type not in TYPES:
            raise ValueError(f"未知的工单类型“{ticket_type}”，应为 {'、'.join(TYPES)}")
        active = set(periods)
        ranked = sorted(
            (r for r in self.rules if r.matches(severity, ticket_type, active)), key=Rule.specificity
        )
        result: dict[str, Target | None] = dict.fromkeys(CLOCKS)
        for rule in ranked:  # later (more specific) rules overwrite earlier ones, clock by clock
            result.update(rule.targets)
        return result


@dataclass(frozen=True)
class Interval:
    """A stretch during which a clock is stopped; ``end`` None means it is still stopped."""

    start: datetime
    end: datetime | None = None


@dataclass
class ClockState:
    clock: str
    target: Target | None
    due: datetime | None
    stopped: bool = False
    met_at: datetime | None = None
    elapsed_minutes: float = 0.0
    target_minutes: float | None = None
    breached: bool = False
    warning: bool = False
    # The instant the clock passes the warn ratio (None when met or stopped before it), and the first instant at
    # which it is breached: the first running instant from ``due`` (a clock due at 12:00 on the workday calendar is
    # not late before 14:30, when business time runs again; nor while a stop holds it). The queue filters on these,
    # stored per ticket (``queue_instants``).
    warn_at: datetime | None = None
    breach_at: datetime | None = None

    @property
    def remaining_minutes(self) -> float | None:
        if self.target_minutes is None:
            return None
        return self.target_minutes - self.elapsed_minutes


@dataclass
class Ticket:
    """What the evaluator needs to know about a ticket."""

    opened: datetime
    severity: str
    type: str
    responded_at: datetime | None = None
    last_update_at: datetime | None = None
    resolved_at: datetime | None = None
    pauses: list[Interval] = field(default_factory=list)  # 等待用户 (waiting for the requester)
    reopened_at: list[datetime] = field(default_factory=list)
    resolved_history: list[datetime] = field(
        default_factory=list
    )  # earlier resolutions, each before a reopen


_EXCEPTIONS: dict[int, tuple[CalendarSpec, list[date], list[date], dict[tuple[int, int], int]]] = {}


def _exceptions(spec: CalendarSpec) -> tuple[list[date], list[date], dict[tuple[int, int], int]]:
    """Sorted weekday holidays and weekend make-up workdays (the only days weekday arithmetic gets wrong), and the
    working weekdays among ``rest`` days from a weekday, kept per calendar object (the sweep asks 100 000 times)."""
    entry = _EXCEPTIONS.get(id(spec))
    if entry is None or entry[0] is not spec:
        off = sorted(d for d in spec.holidays if d.weekday() not in spec.weekend and d not in spec.workdays)
        on = sorted(d for d in spec.workdays if d.weekday() in spec.weekend)
        partial = {
            (start, rest): sum((start + i) % 7 not in spec.weekend for i in range(rest))
            for start in range(7)
            for rest in range(7)
        }
        if len(_EXCEPTIONS) > 64:
            _EXCEPTIONS.clear()
        entry = _EXCEPTIONS[id(spec)] = (spec, off, on, partial)
    return entry[1], entry[2], entry[3]


def _business_days(spec: CalendarSpec, first: date, last: date) -> int:
    """Business days in [first, last), in O(log n) of the calendar's exceptions."""
    if last <= first:
        return 0
    if spec.always_open:
        return (last - first).days
    off, on, partial = _exceptions(spec)
    weeks, rest = divmod((last - first).days, 7)
    count = weeks * (7 - len(spec.weekend)) + partial[first.weekday(), rest]
    count -= bisect.bisect_left(off, last) - bisect.bisect_left(off, first)
    count += bisect.bisect_left(on, last) - bisect.bisect_left(on, first)
    return count


def _day_part(spec: CalendarSpec, local: datetime) -> timedelta:
    """Business time on ``local``'s day before ``local`` (wall-clock offsets from midnight, as the engine adds them)."""
    if not is_business_day(spec, local.date()):
        return timedelta(0)
    since = local.replace(tzinfo=None) - datetime.combine(local.date(), time(0))
    return sum((min(max(since, lo), hi) - lo for lo, hi in spec.offsets), timedelta(0))


def business_time(spec: CalendarSpec, start: datetime, end: datetime) -> timedelta:
    """``engine.business_time_between`` in O(log n) instead of a walk over every day of the span (a ticket open for
    months; the sweep measures every open ticket each minute): whole business days times ``day_length``, plus the
    part of ``end``'s day before it, minus that of ``start``'s day."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    a, b = start.astimezone(spec.zone), end.astimezone(spec.zone)
    if b <= a:
        return timedelta(0)
    whole = _business_days(spec, a.date(), b.date()) * spec.day_length
    return whole + _day_part(spec, b) - _day_part(spec, a)


def target_duration(target: Target, spec: CalendarSpec, opened: datetime) -> timedelta:
    """The target as running business time on ``spec`` for a ticket opened at ``opened``."""
    if target.minutes is not None:
        return timedelta(minutes=target.minutes)
    if target.workdays is not None:
        return target.workdays * spec.day_length
    return business_time_between(spec, opened, end_of_business_day(spec, opened))


def stopped_time(
    spec: CalendarSpec, stops: Iterable[Interval], start: datetime, until: datetime
) -> timedelta:
    """Business time within [start, until] during which the clock was stopped."""
    total = timedelta(0)
    for stop in stops:
        lo, hi = max(stop.start, start), min(stop.end or until, until)
        if hi > lo:
            total += business_time(spec, lo, hi)
    return total


def due_instant(
    spec: CalendarSpec, start: datetime, amount: timedelta, stops: list[Interval]
) -> datetime | None:
    """Earliest instant by which ``amount`` of running (not stopped) business time has passed since ``start``.

    Fixed point: each round adds the stopped time met so far; it only grows, and stops when no new stop is met.
    None while a stop that began before the due instant is still open: the clock is not running.
    """
    stopped = timedelta(0)
    while True:
        due = add_business_time(spec, start, amount + stopped)
        if any(s.end is None and s.start < due for s in stops):
            return None
        now_stopped = stopped_time(spec, stops, start, due)
        if now_stopped == stopped:
            return due
        stopped = now_stopped


def first_running_after(spec: CalendarSpec, due: datetime, stops: list[Interval]) -> datetime | None:
    """The first instant from ``due`` at which the clock runs (business time, not stopped): past it, running time
    exceeds the target. None when a stop still open holds the clock from then on."""
    instant = next_business_instant(spec, due)
    for _ in range(len(stops) + 1):
        holding = [s for s in stops if s.start <= instant and (s.end is None or instant < s.end)]
        if not holding:
            return instant
        if any(s.end is None for s in holding):
            return None
        instant = next_business_instant(spec, max(s.end for s in holding))
    return instant


def running_time(spec: CalendarSpec, start: datetime, until: datetime, stops: list[Interval]) -> timedelta:
    return business_time(spec, start, until) - stopped_time(spec, stops, start, until)


def evaluate(
    policy: Policy,
    calendars: Mapping[str, CalendarSpec],
    ticket: Ticket,
    now: datetime,
    clocks: Iterable[str] = CLOCKS,
) -> dict[str, ClockState]:
    """Every clock of ``ticket`` at ``now`` (or those named in ``clocks``): its due instant, whether it was met,
    breached or near breach."""
    base = calendars["workday"]
    periods = {p.code for p in key_periods_at(base, ticket.opened)}
    targets = policy.targets(ticket.severity, ticket.type, periods)
    waiting = list(ticket.pauses)
    # Between a resolution and the reopen that followed it the resolution and update clocks stand still.
    reopen_stops = [Interval(r, o) for r, o in zip(ticket.resolved_history, ticket.reopened_at, strict=False)]
    result = {}
    for clock in CLOCKS if clocks is CLOCKS else [c for c in CLOCKS if c in set(clocks)]:
        target = targets[clock]
        if target is None:
            result[clock] = ClockState(clock, None, None)
            continue
        spec = calendars[target.calendar]
        stops = waiting + (reopen_stops if clock != "first_response" else [])
        start = ticket.opened
        met_at = {"first_response": ticket.responded_at, "resolution": ticket.resolved_at}.get(clock)
        if clock == "update":
            # The next update is due a target's time after the last response or update.
            start = ticket.last_update_at or ticket.responded_at or ticket.opened
            met_at = None if ticket.resolved_at is None else ticket.resolved_at
        amount = target_duration(target, spec, ticket.opened)
        due = due_instant(spec, start, amount, stops)
        until = met_at or now
        elapsed = running_time(spec, start, until, stops) if until > start else timedelta(0)
        state = ClockState(
            clock,
            target,
            due,
            stopped=due is None and met_at is None,
            met_at=met_at,
            elapsed_minutes=elapsed / timedelta(minutes=1),
            target_minutes=amount / timedelta(minutes=1),
        )
        state.breached = elapsed > amount
        state.warning = not state.breached and met_at is None and elapsed >= amount * policy.warn_ratio
        if due is not None:
            state.breach_at = first_running_after(spec, due, stops)
        if met_at is None and clock in QUEUE_CLOCKS:
            state.warn_at = due_instant(spec, start, amount * policy.warn_ratio, stops)
        result[clock] = state
    return result


QUEUE_CLOCKS = ("first_response", "resolution")


def queue_instants(states: Mapping[str, ClockState]) -> tuple[datetime | None, datetime | None]:
    """(warn_at, overdue_at) of a ticket for the queue, from its first-response and resolution clocks.

    ``overdue_at`` is the earliest breach instant of a clock still running, or of a clock met late (a late first
    response keeps the ticket overdue); ``warn_at`` the earliest instant a running clock passes the warn ratio.
    A ticket is 已超时 at ``now`` iff ``overdue_at < now``, and 即将超时 iff ``warn_at <= now`` and not overdue —
    the same answers as ``evaluate``'s ``breached`` and ``warning`` for those clocks. Stopped clocks (等待用户
    begun before the instant) have none until they run again, when the status change recomputes them.
    """
    warn: list[datetime] = []
    overdue: list[datetime] = []
    for clock in QUEUE_CLOCKS:
        state = states.get(clock)
        if state is None or state.target is None:
            continue
        if state.met_at is None:
            if state.breach_at is not None:
                overdue.append(state.breach_at)
            if state.warn_at is not None:
                warn.append(state.warn_at)
        elif state.breached and state.breach_at is not None:
            overdue.append(state.breach_at)
    return min(warn, default=None), min(overdue, default=None)
