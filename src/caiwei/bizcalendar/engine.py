"""Business calendar engine 业务日历: working periods, statutory holidays and 调休, 7×24, key periods.

Statutory days: computed from the law for any year (``statutory``), the official 调休 schedules of the
``chinesecalendar`` package, and State Council notices imported by an administrator (highest precedence).

Plain Python (no Django): the SLA evaluator and the pages call it with a CalendarSpec built from stored data.
All arithmetic is on timedelta (microseconds), so adding N minutes and counting them back is exact.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import statutory

DAY = timedelta(days=1)
MIDNIGHT = time(0, 0)
# A calendar with no business day in this many consecutive days is treated as having none (no endless loop).
MAX_SEARCH_DAYS = 366 * 20


@dataclass(frozen=True)
class KeyPeriod:
    """关键时期 (年结, 12月大支付, 预算编制 ...): an inclusive date range."""

    code: str
    name: str
    start: date
    end: date


@dataclass(frozen=True)
class CalendarSpec:
    """One calendar. A period ending at time(0, 0) runs until midnight (24:00)."""

    tz: str = "Asia/Shanghai"
    periods: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 30), time(18, 0)))
    always_open: bool = False
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    key_periods: tuple[KeyPeriod, ...] = ()

    @functools.cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @functools.cached_property
    def offsets(self) -> tuple[tuple[timedelta, timedelta], ...]:
        """Working periods as offsets from local midnight."""
        if self.always_open:
            return ((timedelta(0), DAY),)
        result = []
        for start, end in self.periods:
            begin = timedelta(
                hours=start.hour, minutes=start.minute, seconds=start.second, microseconds=start.microsecond
            )
            finish = (
                DAY
                if end == MIDNIGHT
                else timedelta(
                    hours=end.hour, minutes=end.minute, seconds=end.second, microseconds=end.microsecond
                )
            )
            if finish <= begin:
                raise ValueError(f"working period {start}-{end} ends before it starts")
            result.append((begin, finish))
        result.sort()
        for (_, end_a), (start_b, _) in zip(result, result[1:], strict=False):
            if start_b < end_a:
                raise ValueError("working periods overlap")
        return tuple(result)

    @functools.cached_property
    def day_length(self) -> timedelta:
        return sum((end - start for start, end in self.offsets), timedelta(0))


# Years whose statutory holidays are computed from the law (the pages and the API accept 2000–2100).
LAW_YEARS = range(2000, 2101)
Official = Mapping[int, tuple[frozenset[date], frozenset[date]]]


@functools.cache
def _base_days() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """Law days of every year in LAW_YEARS, plus the package's official schedules where it has them."""
    pkg_holidays, pkg_workdays, pkg_years = statutory.package_data()
    law = frozenset(d for year in LAW_YEARS for d in statutory.law_holidays(year))
    return law | pkg_holidays, pkg_workdays, pkg_years


def official_years(imported: Iterable[int] = ()) -> frozenset[int]:
    """Years whose 调休 schedule is known: shipped in the package or imported from a notice."""
    return _base_days()[2] | frozenset(imported)


def china_statutory_days(official: Official | None = None) -> tuple[frozenset[date], frozenset[date]]:
    """(days off, make-up workdays 调休) of China.

    Per year, by precedence: an imported State Council notice (``official``: year → (休, 班) days), else the
    ``chinesecalendar`` package's schedule, else the law's days alone (no 调休; the pages warn). The law's days
    are always off unless a notice lists them as 班. A notice's days in the December before its year (元旦 调休)
    override that December too.
    """
    holidays, workdays, pkg_years = _base_days()
    if not official:
        return holidays, workdays
    holidays, workdays = set(holidays), set(workdays)
    for year, (off, work) in official.items():
        if year in pkg_years:  # the notice replaces the package's schedule of that year
            holidays = {d for d in holidays if d.year != year}
            workdays = {d for d in workdays if d.year != year}
            holidays |= set(statutory.law_holidays(year)) if year in LAW_YEARS else set()
        holidays = (holidays | off) - work
        workdays = (workdays | work) - off
    return frozenset(holidays), frozenset(workdays)


def china_calendar(
    periods: tuple[tuple[time, time], ...] = CalendarSpec.periods,
    extra_holidays: tuple[date, ...] | frozenset[date] = (),
    extra_workdays: tuple[date, ...] | frozenset[date] = (),
    key_periods: tuple[KeyPeriod, ...] = (),
    always_open: bool = False,
    official: Official | None = None,
) -> CalendarSpec:
    """China's calendar plus administrator-added days; an added day overrides the statutory data."""
    holidays, workdays = china_statutory_days(official)
    extra_h, extra_w = frozenset(extra_holidays), frozenset(extra_workdays)
    return CalendarSpec(
        periods=periods,
        always_open=always_open,
        holidays=(holidays - extra_w) | extra_h,
        workdays=(workdays - extra_h) | extra_w,
        key_periods=key_periods,
    )


def _aware(spec: CalendarSpec, instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(spec.zone)


def is_business_day(spec: CalendarSpec, day: date) -> bool:
    """Make-up workdays win over the weekend; holidays win over weekdays; a day in both sets is a workday."""
    if spec.always_open or day in spec.workdays:
        return True
    if day in spec.holidays:
        return False
    return day.weekday() not in spec.weekend


def _midnight(spec: CalendarSpec, day: date) -> datetime:
    return datetime.combine(day, MIDNIGHT, tzinfo=spec.zone)


def _periods_on(spec: CalendarSpec, day: date) -> Iterator[tuple[datetime, datetime]]:
    if is_business_day(spec, day):
        base = _midnight(spec, day)
        for start, end in spec.offsets:
            yield base + start, base + end


def is_business_time(spec: CalendarSpec, instant: datetime) -> bool:
    local = _aware(spec, instant)
    return any(start <= local < end for start, end in _periods_on(spec, local.date()))


def add_business_minutes(spec: CalendarSpec, start: datetime, minutes: int) -> datetime:
    """The earliest instant by which ``minutes`` of business time have passed since ``start``."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    return add_business_time(spec, start, timedelta(minutes=minutes))


def add_business_time(spec: CalendarSpec, start: datetime, amount: timedelta) -> datetime:
    """As add_business_minutes, for any non-negative duration (fractions of a minute included)."""
    if amount < timedelta(0):
        raise ValueError("amount must not be negative")
    local = _aware(spec, start)
    remaining = amount
    if not remaining:
        return local
    if not spec.day_length:
        raise ValueError("calendar has no business time within the search window")
    day, first, idle = local.date(), True, 0
    while idle < MAX_SEARCH_DAYS:
        if not is_business_day(spec, day):
            idle += 1
        elif not first and spec.day_length < remaining:
            remaining -= spec.day_length  # a whole day fits: skip it without walking its periods
            idle = 0
        else:
            for period_start, period_end in _periods_on(spec, day):
                if period_end <= local:
                    continue
                begin = max(period_start, local)
                available = period_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            idle = 0
        first = False
        day += DAY
    raise ValueError("calendar has no business time within the search window")


def business_time_between(spec: CalendarSpec, start: datetime, end: datetime) -> timedelta:
    """Business time in [start, end] as an exact duration."""
    return _between(spec, start, end)


def business_seconds_between(spec: CalendarSpec, start: datetime, end: datetime) -> float:
    """Business time in [start, end] in seconds (exact to the microsecond)."""
    return _between(spec, start, end).total_seconds()


def business_minutes_between(spec: CalendarSpec, start: datetime, end: datetime) -> float:
    return _between(spec, start, end) / timedelta(minutes=1)


def _between(spec: CalendarSpec, start: datetime, end: datetime) -> timedelta:
    a, b = _aware(spec, start), _aware(spec, end)
    if b <= a:
        return timedelta(0)
    total = timedelta(0)
    first, last = a.date(), b.date()
    day = first
    while day <= last:
        if first < day < last:
            if is_business_day(spec, day):
                total += spec.day_length
        else:
            for period_start, period_end in _periods_on(spec, day):
                lo, hi = max(period_start, a), min(period_end, b)
                if hi > lo:
                    total += hi - lo
        day += DAY
    return total


def next_business_instant(spec: CalendarSpec, instant: datetime) -> datetime:
    """The instant itself during business time, else the start of the next working period."""
    local = _aware(spec, instant)
    day = local.date()
    for _ in range(MAX_SEARCH_DAYS):
        for period_start, period_end in _periods_on(spec, day):
            if period_end > local:
                return max(period_start, local)
        day += DAY
    raise ValueError("calendar has no business time within the search window")


def end_of_business_day(spec: CalendarSpec, instant: datetime) -> datetime:
    """The close of the business day ``instant`` falls in, or of the next one when it is after hours
    (e.g. a missed call's callback is due the same business day)."""
    start = next_business_instant(spec, instant)
    return list(_periods_on(spec, start.date()))[-1][1]


def key_periods_at(spec: CalendarSpec, instant: datetime) -> tuple[KeyPeriod, ...]:
    day = _aware(spec, instant).date()
    return tuple(p for p in spec.key_periods if p.start <= day <= p.end)
