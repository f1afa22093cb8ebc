"""巡检频次 → due slots, on the business calendar. Plain Python (no Django), so hypothesis can hammer it.

A rule is one of:

- ``daily``: every business day, at each of ``times`` (two times = the contract's 每天两次, e.g. 09:00 and 15:00);
- ``weekly``: once a week on ``weekday`` (0 = Monday) at ``times[0]``; a weekday that is not a business day moves
  to the first business day on or after it (国庆 moves Thursday's inspection to the first workday after);
- ``monthly``: on the ``nth`` business day of each month at ``times[0]`` (the last one when the month has fewer).

``key_kind`` (optional, with ``key_times`` and ``key_codes``): inside a key period of the calendar (12月大支付,
年结 …; all key periods when ``key_codes`` is empty) the item follows the key rule instead — “关键时期加密巡检”.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from caiwei.bizcalendar.engine import CalendarSpec, is_business_day

KINDS = {"daily": "每个工作日", "weekly": "每周", "monthly": "每月"}
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
DAY = timedelta(days=1)
# A weekly slot moved past a holiday lands at most this far from its weekday (the longest 黄金周 is 8 days).
MAX_SHIFT = 21


@dataclass(frozen=True)
class Rule:
    kind: str = "daily"
    times: tuple[time, ...] = (time(9, 0),)
    weekday: int = 0
    nth: int = 1
    key_kind: str = ""
    key_times: tuple[time, ...] = ()
    key_codes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown frequency {self.kind}")
        if self.key_kind and self.key_kind not in KINDS:
            raise ValueError(f"unknown key-period frequency {self.key_kind}")
        if not self.times:
            raise ValueError("a rule needs at least one time")
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday out of range")
        if not 1 <= self.nth <= 23:
            raise ValueError("nth business day out of range")

    def label(self) -> str:
        return describe(self.kind, self.times, self.weekday, self.nth) + (
            f"；关键时期{describe(self.key_kind, self.key_times or self.times, self.weekday, self.nth)}"
            if self.key_kind
            else ""
        )


def describe(kind: str, times: tuple[time, ...], weekday: int, nth: int) -> str:
    clock = "、".join(t.strftime("%H:%M") for t in sorted(times))
    if kind == "daily":
        return f"每个工作日 {clock}" + (f"（每天 {len(times)} 次）" if len(times) > 1 else "")
    if kind == "weekly":
        return f"每周{WEEKDAYS[weekday][1]} {sorted(times)[0].strftime('%H:%M')}（遇节假日顺延）"
    return f"每月第 {nth} 个工作日 {sorted(times)[0].strftime('%H:%M')}"


def in_key_period(spec: CalendarSpec, rule: Rule, day: date) -> bool:
    if not rule.key_kind:
        return False
    return any(
        p.start <= day <= p.end and (not rule.key_codes or p.code in rule.key_codes) for p in spec.key_periods
    )


def next_business_day(spec: CalendarSpec, day: date) -> date | None:
    """The first business day on or after ``day`` (None when none comes within MAX_SHIFT days)."""
    for n in range(MAX_SHIFT + 1):
        candidate = day + n * DAY
        if is_business_day(spec, candidate):
            return candidate
    return None


def nth_business_day(spec: CalendarSpec, year: int, month: int, nth: int) -> date | None:
    day, found, last = date(year, month, 1), 0, None
    while day.month == month:
        if is_business_day(spec, day):
            found += 1
            last = day
            if found == nth:
                return day
        day += DAY
    return last


def _days(kind: str, spec: CalendarSpec, rule: Rule, first: date, last: date) -> set[date]:
    """The days in [first, last] a ``kind`` rule (with the rule's weekday and nth) is due."""
    days: set[date] = set()
    if kind == "daily":
        day = first
        while day <= last:
            if is_business_day(spec, day):
                days.add(day)
            day += DAY
    elif kind == "weekly":
        day = first - MAX_SHIFT * DAY
        day += ((rule.weekday - day.weekday()) % 7) * DAY
        while day <= last:
            moved = next_business_day(spec, day)
            if moved is not None and first <= moved <= last:
                days.add(moved)
            day += 7 * DAY
    else:
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            day = nth_business_day(spec, year, month, rule.nth)
            if day is not None and first <= day <= last:
                days.add(day)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return days


def due_slots(spec: CalendarSpec, rule: Rule, first: date, last: date) -> list[datetime]:
    """Every due instant of ``rule`` on the days ``first``..``last`` (inclusive), in the calendar's zone, sorted."""
    if last < first:
        return []
    normal = _days(rule.kind, spec, rule, first, last)
    key = _days(rule.key_kind, spec, rule, first, last) if rule.key_kind else set()
    out: list[datetime] = []
    for day in sorted(normal | key):
        if in_key_period(spec, rule, day):
            if day not in key:
                continue
            times = rule.key_times or rule.times
            kind = rule.key_kind
        else:
            if day not in normal:
                continue
            times, kind = rule.times, rule.kind
        chosen = sorted(set(times)) if kind == "daily" else [sorted(times)[0]]
        out.extend(datetime.combine(day, t, tzinfo=spec.zone) for t in chosen)
    return out


def parse_times(text: str) -> tuple[time, ...]:
    """“09:00,15:00” (also “、”, “，”, spaces) → times; ValueError in Chinese on bad input."""
    parts = [p for p in text.replace("、", ",").replace("，", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError("至少填写一个时间，如 09:00")
    times = []
    for part in parts:
        try:
            hour, minute = part.split(":")
            times.append(time(int(hour), int(minute)))
        except ValueError as exc:
            raise ValueError(f"时间“{part}”格式应为 时:分，如 09:00") from exc
    if len(times) > 8:
        raise ValueError("一天最多 8 个巡检时间")
    return tuple(sorted(set(times)))
