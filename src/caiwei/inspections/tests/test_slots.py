"""Due slots derived from the calendar rule, over random dates including statutory holidays and 调休 workdays of
the default calendar (China's, as the 工作日历 builds it). Plain Python: no database."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.bizcalendar.engine import KeyPeriod, china_calendar, is_business_day
from caiwei.inspections import slots

SPEC = china_calendar()
YEARS = (2019, 2030)
HOLIDAYS = sorted(d for d in SPEC.holidays if YEARS[0] <= d.year <= YEARS[1] and d.weekday() < 5)
MAKEUP = sorted(d for d in SPEC.workdays if YEARS[0] <= d.year <= YEARS[1])
# Random days, with the calendar's exceptions drawn on purpose (a plain date strategy would rarely hit them).
DAYS = st.one_of(
    st.dates(date(YEARS[0], 1, 1), date(YEARS[1], 12, 31)),
    st.sampled_from(HOLIDAYS),
    st.sampled_from(MAKEUP),
)
TWICE = slots.Rule("daily", (time(9, 0), time(15, 0)))


def test_the_default_calendar_has_holidays_and_makeup_workdays():
    assert len(HOLIDAYS) > 50 and len(MAKEUP) > 20
    assert date(2026, 10, 1) in SPEC.holidays and not is_business_day(SPEC, date(2026, 10, 1))
    assert all(is_business_day(SPEC, d) for d in MAKEUP)


@settings(max_examples=400, deadline=None)
@given(DAYS)
def test_twice_a_day_has_two_slots_on_each_business_day_and_none_on_a_holiday(day):
    found = slots.due_slots(SPEC, TWICE, day, day)
    if is_business_day(SPEC, day):
        assert [s.timetz().replace(tzinfo=None) for s in found] == [time(9, 0), time(15, 0)]
        assert all(s.date() == day and s.tzinfo is not None for s in found)
    else:
        assert found == []


def test_a_makeup_saturday_is_inspected_and_a_holiday_weekday_is_not():
    saturday = next(d for d in MAKEUP if d.weekday() == 5)
    assert len(slots.due_slots(SPEC, TWICE, saturday, saturday)) == 2
    assert slots.due_slots(SPEC, TWICE, date(2026, 10, 1), date(2026, 10, 1)) == []


def first_business_on_or_after(day: date) -> date:
    while not is_business_day(SPEC, day):
        day += timedelta(days=1)
    return day


@settings(max_examples=200, deadline=None)
@given(DAYS, st.integers(0, 6), st.integers(0, 70))
def test_weekly_slots_land_on_the_first_business_day_on_or_after_the_weekday(start, weekday, span):
    last = start + timedelta(days=span)
    rule = slots.Rule("weekly", (time(10, 0),), weekday=weekday)
    found = [s.date() for s in slots.due_slots(SPEC, rule, start, last)]
    # The oracle: every weekday date from well before the range, moved forward day by day.
    expected = set()
    day = start - timedelta(days=40)
    while day <= last:
        if day.weekday() == weekday:
            moved = first_business_on_or_after(day)
            if start <= moved <= last:
                expected.add(moved)
        day += timedelta(days=1)
    assert found == sorted(expected)
    assert len(found) == len(set(found))
    assert all(is_business_day(SPEC, d) for d in found)


def test_a_thursday_inspection_in_golden_week_moves_to_the_first_workday_after():
    rule = slots.Rule("weekly", (time(10, 0),), weekday=3)
    found = [s.date() for s in slots.due_slots(SPEC, rule, date(2026, 9, 28), date(2026, 10, 11))]
    assert date(2026, 10, 1) not in found
    assert first_business_on_or_after(date(2026, 10, 1)) in found


@settings(max_examples=150, deadline=None)
@given(DAYS, st.integers(1, 5))
def test_monthly_is_the_nth_business_day(day, nth):
    rule = slots.Rule("monthly", (time(9, 30),), nth=nth)
    first = day.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    found = slots.due_slots(SPEC, rule, first, last)
    business = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    business = [d for d in business if is_business_day(SPEC, d)]
    assert [s.date() for s in found] == [business[nth - 1]]


def test_key_periods_override_the_frequency():
    spec = china_calendar(
        key_periods=(KeyPeriod("dec-pay", "12月大支付", date(2026, 12, 1), date(2026, 12, 31)),)
    )
    rule = slots.Rule(
        "weekly", (time(10, 0),), weekday=0, key_kind="daily", key_times=(time(9, 0), time(15, 0))
    )
    november = slots.due_slots(spec, rule, date(2026, 11, 1), date(2026, 11, 30))
    december = slots.due_slots(spec, rule, date(2026, 12, 1), date(2026, 12, 31))
    assert len(november) == 5  # the Mondays
    business = sum(is_business_day(spec, date(2026, 12, d)) for d in range(1, 32))
    assert len(december) == 2 * business
    # only the named key periods: year-end is not 12月大支付
    only = slots.Rule("weekly", (time(10, 0),), key_kind="daily", key_codes=frozenset({"year-end"}))
    assert len(slots.due_slots(spec, only, date(2026, 12, 1), date(2026, 12, 31))) <= 5


def test_bad_times_are_refused_in_chinese():
    with pytest.raises(ValueError, match="时:分"):
        slots.parse_times("9点")
    assert slots.parse_times("15:00、09:00") == (time(9, 0), time(15, 0))
