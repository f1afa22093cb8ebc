"""The business-calendar engine against China's 2025–2027 calendar: hand-computed cases and properties."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from caiwei.bizcalendar.engine import (
    CalendarSpec,
    KeyPeriod,
    add_business_minutes,
    business_minutes_between,
    china_calendar,
    end_of_business_day,
    is_business_day,
    is_business_time,
    key_periods_at,
    next_business_instant,
)

SH = ZoneInfo("Asia/Shanghai")
CHINA = china_calendar()
ALWAYS = CalendarSpec(always_open=True)


def at(y, mo, d, h=0, mi=0, s=0, us=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=SH)


# --- hand-computed cases (default hours 08:30–12:00 and 14:30–18:00, 7 h a day) ----------------------------


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (at(2026, 11, 24, 9, 0), 30, at(2026, 11, 24, 9, 30)),  # plain Tuesday morning
        (at(2026, 11, 24, 11, 50), 30, at(2026, 11, 24, 14, 50)),  # across the lunch break
        (at(2026, 11, 24, 11, 30), 30, at(2026, 11, 24, 12, 0)),  # ends exactly at a period's end
        (at(2026, 11, 24, 20, 0), 30, at(2026, 11, 25, 9, 0)),  # after hours: next morning
        (at(2026, 11, 27, 17, 45), 30, at(2026, 11, 30, 8, 45)),  # Friday evening → Monday
        (at(2026, 9, 30, 17, 30), 60, at(2026, 10, 8, 9, 0)),  # National Day holiday 10-01..10-07
        (at(2026, 10, 9, 17, 30), 60, at(2026, 10, 10, 9, 0)),  # 调休: Saturday 10-10 is a workday
        (at(2026, 2, 13, 17, 0), 120, at(2026, 2, 14, 9, 30)),  # 调休 Saturday before the Spring Festival
        (at(2026, 2, 14, 17, 0), 120, at(2026, 2, 24, 9, 30)),  # Spring Festival 02-15..02-23
        (at(2025, 12, 31, 17, 0), 120, at(2026, 1, 4, 9, 30)),  # year end: 01-01..03 off, Sunday 01-04 调休
        (at(2026, 11, 24, 8, 30), 3 * 7 * 60, at(2026, 11, 26, 18, 0)),  # three whole workdays
        (at(2026, 11, 24, 3, 0), 0, at(2026, 11, 24, 3, 0)),  # zero minutes: the start itself
    ],
)
def test_due_times_by_hand(start, minutes, due):
    assert add_business_minutes(CHINA, start, minutes) == due
    assert business_minutes_between(CHINA, start, due) == minutes


def test_business_days_follow_statutory_data():
    assert is_business_day(CHINA, date(2026, 10, 10))  # make-up Saturday
    assert not is_business_day(CHINA, date(2026, 10, 17))  # ordinary Saturday
    assert not is_business_day(CHINA, date(2026, 10, 8 - 1))  # last day of National Day
    assert is_business_day(CHINA, date(2026, 10, 8))
    assert not is_business_day(CHINA, date(2026, 1, 1))


def test_admin_added_days_override():
    spec = china_calendar(extra_holidays=(date(2026, 11, 25),), extra_workdays=(date(2026, 10, 3),))
    assert not is_business_day(spec, date(2026, 11, 25))
    assert is_business_day(spec, date(2026, 10, 3))
    assert add_business_minutes(spec, at(2026, 11, 24, 17, 30), 60) == at(2026, 11, 26, 9, 0)


def test_seven_by_twenty_four_across_midnight_and_year_end():
    assert add_business_minutes(ALWAYS, at(2026, 12, 31, 23, 50), 20) == at(2027, 1, 1, 0, 10)
    assert business_minutes_between(ALWAYS, at(2026, 10, 1), at(2026, 10, 2)) == 24 * 60


def test_period_until_midnight():
    spec = CalendarSpec(periods=((time(20, 0), time(0, 0)),), holidays=frozenset(), workdays=frozenset())
    assert add_business_minutes(spec, at(2026, 11, 24, 23, 30), 60) == at(2026, 11, 25, 20, 30)
    assert business_minutes_between(spec, at(2026, 11, 24), at(2026, 11, 25)) == 240


def test_helpers():
    assert is_business_time(CHINA, at(2026, 11, 24, 9, 0))
    assert not is_business_time(CHINA, at(2026, 11, 24, 12, 0))  # periods are half-open
    assert next_business_instant(CHINA, at(2026, 11, 24, 12, 30)) == at(2026, 11, 24, 14, 30)
    assert next_business_instant(CHINA, at(2026, 9, 30, 19, 0)) == at(2026, 10, 8, 8, 30)
    assert end_of_business_day(CHINA, at(2026, 11, 24, 9, 0)) == at(2026, 11, 24, 18, 0)
    assert end_of_business_day(CHINA, at(2026, 10, 3, 9, 0)) == at(2026, 10, 8, 18, 0)
    year_end = KeyPeriod("year-end", "年结", date(2026, 12, 25), date(2027, 1, 20))
    spec = china_calendar(key_periods=(year_end,))
    assert key_periods_at(spec, at(2027, 1, 20, 23, 59)) == (year_end,)
    assert key_periods_at(spec, at(2027, 1, 21, 0, 0)) == ()


def test_bad_input():
    with pytest.raises(ValueError, match="aware"):
        add_business_minutes(CHINA, datetime(2026, 1, 5, 9, 0), 5)  # noqa: DTZ001
    with pytest.raises(ValueError, match="negative"):
        add_business_minutes(CHINA, at(2026, 1, 5), -1)
    closed = CalendarSpec(weekend=frozenset(range(7)))
    with pytest.raises(ValueError, match="no business time"):
        add_business_minutes(closed, at(2026, 1, 5), 1)


# --- properties ---------------------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(SH)
)
minutes = st.integers(min_value=0, max_value=200_000)


@st.composite
def calendars(draw) -> CalendarSpec:
    if draw(st.booleans()) and draw(st.booleans()):
        return ALWAYS
    cuts = sorted(draw(st.sets(st.integers(min_value=0, max_value=24 * 4), min_size=2, max_size=6)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    periods = []
    for a, b in zip(cuts[::2], cuts[1::2], strict=True):
        start = time(a // 4, (a % 4) * 15)
        end = time(0, 0) if b == 96 else time(b // 4, (b % 4) * 15)
        periods.append((start, end))
    days = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
    holidays = draw(st.frozensets(days, max_size=40))
    workdays = draw(st.frozensets(days, max_size=10)) - holidays
    weekend = draw(st.frozensets(st.integers(0, 6), max_size=3))
    return CalendarSpec(periods=tuple(periods), holidays=holidays, workdays=workdays, weekend=weekend)


specs = st.one_of(st.just(CHINA), calendars())
common = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(specs, instants, minutes)
def test_add_then_count_returns_n(spec, start, n):
    assert business_minutes_between(spec, start, add_business_minutes(spec, start, n)) == n


@common
@given(specs, instants, minutes, minutes)
def test_add_is_monotone_in_minutes(spec, start, m, n):
    lo, hi = sorted((m, n))
    assert add_business_minutes(spec, start, lo) <= add_business_minutes(spec, start, hi)


@common
@given(specs, instants, instants, minutes)
def test_add_is_monotone_in_start(spec, a, b, n):
    a, b = sorted((a, b))
    assert add_business_minutes(spec, a, n) <= add_business_minutes(spec, b, n)


@common
@given(specs, instants, instants, instants)
def test_count_is_additive_and_monotone(spec, a, b, c):
    a, b, c = sorted((a, b, c))
    ab, bc, ac = (business_minutes_between(spec, x, y) for x, y in ((a, b), (b, c), (a, c)))
    assert ab + bc == pytest.approx(ac, abs=1e-9)
    assert 0 <= ab <= ac and bc <= ac


@common
@given(specs, instants, st.integers(min_value=1, max_value=200_000))
def test_due_lands_in_business_time_or_at_a_period_end(spec, start, n):
    due = add_business_minutes(spec, start, n)
    assert is_business_day(spec, due.date()) or due.time() == time(0, 0)
    just_before = due - timedelta(microseconds=1)
    assert is_business_time(spec, just_before)


@common
@given(instants, minutes)
def test_other_time_zones_give_the_same_instant(start, n):
    assume(start.year < 2028)
    utc = start.astimezone(UTC)
    assert add_business_minutes(CHINA, utc, n) == add_business_minutes(CHINA, start, n)
    assert add_business_minutes(CHINA, utc, n).tzinfo == SH


def test_calendar_without_periods_refuses_instead_of_looping():
    with pytest.raises(ValueError, match="no business time"):
        add_business_minutes(CalendarSpec(periods=()), at(2026, 1, 5), 1)


def test_tiny_calendar_far_ahead():
    """15 minutes a day, 20 years ahead: found by hypothesis when the search window was a day count."""
    spec = CalendarSpec(periods=((time(0, 0), time(0, 15)),), weekend=frozenset())
    due = add_business_minutes(spec, at(2025, 1, 1), 109_801)
    assert business_minutes_between(spec, at(2025, 1, 1), due) == 109_801
