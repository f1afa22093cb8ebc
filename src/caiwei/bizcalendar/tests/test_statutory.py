"""Statutory holidays computed from 《全国年节及纪念日放假办法》, checked against the rule, two other sources and
almanac facts; and the calendar with no official 调休 data at all."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays as holidays_pkg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.bizcalendar import engine, statutory

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def no_package_data(monkeypatch):
    """As if the chinesecalendar package shipped no official schedule at all."""
    monkeypatch.setattr(statutory, "package_data", lambda: (frozenset(), frozenset(), frozenset()))
    engine._base_days.cache_clear()
    yield
    engine._base_days.cache_clear()


# Almanac facts (正月初一、清明、端午、中秋 of 2027 and 2028), as printed in any Chinese calendar.
ALMANAC = {
    2027: {
        "正月初一": date(2027, 2, 6),
        "清明": date(2027, 4, 5),
        "端午": date(2027, 6, 9),
        "中秋": date(2027, 9, 15),
    },
    2028: {
        "正月初一": date(2028, 1, 26),
        "清明": date(2028, 4, 4),
        "端午": date(2028, 5, 28),
        "中秋": date(2028, 10, 3),
    },
}


def by_law_2024(year: int) -> set[date]:
    """The 2024 text of Article 2 applied by hand to the almanac facts."""
    a = ALMANAC[year]
    eve = a["正月初一"] - timedelta(days=1)
    return {
        date(year, 1, 1),  # 元旦 1 天
        *(eve + timedelta(days=n) for n in range(4)),  # 春节 4 天：除夕、初一至初三
        a["清明"],  # 清明节 1 天
        date(year, 5, 1),
        date(year, 5, 2),  # 劳动节 2 天
        a["端午"],
        a["中秋"],
        date(year, 10, 1),
        date(year, 10, 2),
        date(year, 10, 3),  # 国庆节 3 天
    }


@pytest.mark.parametrize("year", [2027, 2028])
def test_every_statutory_day_is_off_without_package_data(no_package_data, year):
    spec = engine.china_calendar()
    expected = by_law_2024(year)
    assert set(statutory.law_holidays(year)) == expected
    for day in expected:
        assert not engine.is_business_day(spec, day), day
    # No 调休 is invented: every other weekday of the year is a working day.
    others = [date(year, 1, 1) + timedelta(n) for n in range(365)]
    assert all(engine.is_business_day(spec, d) for d in others if d not in expected and d.weekday() < 5)


def test_year_end_ticket_is_not_due_on_new_years_day(no_package_data):
    # 2026-12-31 (Thursday) 17:00 + 2 working hours: 1 h that day, then 元旦 (Friday) and the weekend are off.
    spec = engine.china_calendar()
    start = datetime(2026, 12, 31, 17, 0, tzinfo=SH)
    assert engine.add_business_minutes(spec, start, 120) == datetime(2027, 1, 4, 9, 30, tzinfo=SH)


def test_package_years_keep_their_official_schedule():
    spec = engine.china_calendar()
    assert engine.is_business_day(spec, date(2026, 10, 10))  # 2026 调休 Saturday, from the package
    assert not engine.is_business_day(spec, date(2026, 10, 7))


# --- second source: the holidays package (China), statutory days only -------------------------------------

HOLIDAYS_STATUTORY_NAMES = {
    "New Year's Day",
    "Chinese New Year's Eve",
    "Chinese New Year (Spring Festival)",
    "Tomb-Sweeping Day",
    "Labor Day",
    "Dragon Boat Festival",
    "Mid-Autumn Festival",
    "National Day",
}


@pytest.mark.parametrize("year", range(2000, 2100))
def test_statutory_days_match_the_holidays_package(year):
    """holidays.China models every version of the law since 1999 (and adds the official 调休 days and one-off
    days off, e.g. 2015-09-03 and the 2020 extension, under other names, which are not statutory: left out).
    1999 is not compared: the 1999 amendment took effect in September, after that May's holiday."""
    theirs = holidays_pkg.China(years=year, language="en_US")
    statutory_theirs = {d for d, names in theirs.items() if set(names.split("; ")) & HOLIDAYS_STATUTORY_NAMES}
    assert set(statutory.law_holidays(year)) == statutory_theirs


# --- the official data in chinesecalendar ------------------------------------------------------------------

PACKAGE_NAMES = {
    "元旦": "New Year's Day",
    "春节": "Spring Festival",
    "清明节": "Tomb-sweeping Day",
    "劳动节": "Labour Day",
    "端午节": "Dragon Boat Festival",
    "中秋节": "Mid-autumn Festival",
    "国庆节": "National Day",
}


@pytest.mark.parametrize("year", [2025, 2026])
def test_official_schedule_contains_every_computed_day(year):
    computed = statutory.law_holidays(year)
    for day, name in computed.items():
        assert chinese_calendar.get_holiday_detail(day) == (True, PACKAGE_NAMES[name]), day
    # Each festival of the official schedule has its statutory day(s) here, and the official weekday days off
    # that are not 调休 (in lieu) are statutory days, or the weekday after a weekend statutory day (补休).
    official = {d for d in chinese_calendar.holidays if d.year == year}
    assert {chinese_calendar.get_holiday_detail(d)[1] for d in official} == {
        PACKAGE_NAMES[n] for n in computed.values()
    }
    for day in official:
        if day.weekday() < 5 and not chinese_calendar.is_in_lieu(day) and day not in computed:
            before = [day - timedelta(n) for n in (1, 2, 3)]
            assert any(d in computed and d.weekday() >= 5 for d in before), day


# --- the solar term 清明 against the 寿星 formula ----------------------------------------------------------


def qingming_by_formula(year: int) -> date:
    """寿星通用公式: day = [Y×D + C] − L, Y = the year's last two digits, D = 0.2422, L = [Y/4], C = 5.59 in the
    20th century and 4.81 in the 21st."""
    y = year % 100
    c = 5.59 if year < 2000 else 4.81
    return date(year, 4, int(y * 0.2422 + c) - y // 4)


@pytest.mark.parametrize("year", range(1901, 2100))
def test_qingming_matches_the_formula(year):
    assert statutory.qingming(year) == qingming_by_formula(year)


# --- properties of the rule ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=2000, max_value=2200))
def test_each_festival_lies_in_its_legal_window(year):
    days = statutory.law_holidays(year)
    by_name: dict[str, list[date]] = {}
    for day, name in days.items():
        by_name.setdefault(name, []).append(day)
        assert day.year == year
    new_year = statutory.lunar_date(year, 1, 1)
    assert (
        date(year, 1, 21) <= new_year <= date(year, 2, 20)
    )  # 春节 always between 21 January and 20 February
    assert (new_year - statutory.lunar_date(year - 1, 12, 1)).days in (29, 30)  # 腊月 has 29 or 30 days
    assert date(year, 4, 4) <= statutory.qingming(year) <= date(year, 4, 6)
    # Lunar months have 29 or 30 days, with at most one leap month in between.
    dragon = (statutory.lunar_date(year, 5, 5) - new_year).days
    autumn = (statutory.lunar_date(year, 8, 15) - new_year).days
    assert 4 * 29 + 4 <= dragon <= 5 * 30 + 4
    assert 7 * 29 + 14 <= autumn <= 8 * 30 + 14
    version = statutory.law_version(year)
    spring = sorted(d for d, n in days.items() if n == "春节")
    assert spring == [
        new_year + timedelta(n) for n in ({2008: (-1, 0, 1), 2025: (-1, 0, 1, 2)}.get(version, (0, 1, 2)))
    ]
    assert by_name["劳动节"] == [
        date(year, 5, d) for d in range(1, {1999: 4, 2008: 2, 2014: 2, 2025: 3}[version])
    ]
    assert by_name["元旦"] == [date(year, 1, 1)]
    # 国庆节 3 days; 中秋 counts once when it falls on one of them.
    assert [d for d in days if d.month == 10 and d.day <= 3] == [date(year, 10, d) for d in (1, 2, 3)]
    if version >= 2008:
        assert len(days) == (13 if version >= 2025 else 11) - (
            date(year, 10, 1) <= statutory.lunar_date(year, 8, 15) <= date(year, 10, 3)
        )
