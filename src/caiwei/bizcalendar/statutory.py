"""法定节假日 computed from the law, and the official 调休 data of the ``chinesecalendar`` package.

《全国年节及纪念日放假办法》第二条 (全体公民放假的节日), by the version in force in each year:

- 1999 修订 (施行至 2007 年底): 元旦 1 天; 春节 3 天 (正月初一至初三); 劳动节 3 天 (5 月 1–3 日); 国庆节 3 天.
- 2007 修订, 国务院令第 513 号 (2008-01-01 起): 元旦 1 天; 春节 3 天 (农历除夕、正月初一、初二); 清明节 1 天
  (农历清明当日); 劳动节 1 天 (5 月 1 日); 端午节 1 天 (农历端午当日); 中秋节 1 天 (农历中秋当日);
  国庆节 3 天 (10 月 1–3 日).
- 2013 修订, 国务院令第 644 号 (2014-01-01 起): 春节改为正月初一、初二、初三; 其余同上.
- 2024 修订 (2025-01-01 起): 春节 4 天 (农历除夕、正月初一至初三); 劳动节 2 天 (5 月 1 日、2 日); 其余同上.

Every amendment took effect on 1 January, so one version governs a whole Gregorian year (除夕 is never
before 21 January, so the Spring Festival never straddles two versions).

Lunar dates (除夕, 端午 = 五月初五, 中秋 = 八月十五, never of a leap month) and the solar term 清明 (the day, in
Beijing time, on which the sun's apparent longitude reaches 15°) come from ``lunar-python`` (MIT, the Python
port of 6tail's lunar library; it computes new moons and solar terms with 许剑伟's 寿星天文历 algorithm, so
it covers any year rather than a fixed table). The tests check it against the 寿星 formula for 清明 and
against the ``holidays`` package.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta

# (first year in force, name of the version) — newest last.
LAW_VERSIONS = (
    (1999, "1999 年修订"),
    (2008, "2007 年修订（国务院令第 513 号）"),
    (2014, "2013 年修订（国务院令第 644 号）"),
    (2025, "2024 年修订"),
)
FIRST_YEAR = 1999  # the computation follows the 1999 text for any earlier year too; nothing here uses those


def law_version(year: int) -> int:
    """The first year of the version of the law that governs ``year``."""
    return max((start for start, _ in LAW_VERSIONS if start <= year), default=LAW_VERSIONS[0][0])


def lunar_date(year: int, month: int, day: int) -> date:
    """The Gregorian date of lunar ``year``-``month``-``day`` (a regular month, never the leap one)."""
    from lunar_python import Lunar

    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def qingming(year: int) -> date:
    """The day of the solar term 清明 in ``year`` (Beijing time)."""
    from lunar_python import Lunar

    solar = Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]
    day = date(solar.getYear(), solar.getMonth(), solar.getDay())
    if day.year != year:  # the lunar year's table holds this Gregorian year's 清明; guard anyway
        raise ValueError(f"清明 of {year} computed as {day}")
    return day


@functools.cache
def law_holidays(year: int) -> dict[date, str]:
    """The days off by law in ``year`` (date → festival), without any 调休."""
    version = law_version(year)
    days: dict[date, str] = {date(year, 1, 1): "元旦"}
    new_year = lunar_date(year, 1, 1)  # 正月初一
    spring = {
        1999: range(0, 3),  # 初一至初三
        2008: range(-1, 2),  # 除夕、初一、初二
        2014: range(0, 3),  # 初一至初三
        2025: range(-1, 3),  # 除夕、初一至初三
    }[version]
    for offset in spring:
        days[new_year + timedelta(days=offset)] = "春节"
    labour = 3 if version == 1999 else 1 if version < 2025 else 2
    for d in range(1, labour + 1):
        days[date(year, 5, d)] = "劳动节"
    if version >= 2008:
        days[qingming(year)] = "清明节"
        days[lunar_date(year, 5, 5)] = "端午节"
        days[lunar_date(year, 8, 15)] = "中秋节"
    for d in (1, 2, 3):
        days[date(year, 10, d)] = "国庆节"  # 中秋 may fall here too: one day off, not two
    return dict(sorted(days.items()))


@functools.cache
def package_data() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """(holidays, 调休 workdays, years covered) of the official schedules shipped in ``chinesecalendar``."""
    import chinese_calendar

    holidays, workdays = frozenset(chinese_calendar.holidays), frozenset(chinese_calendar.workdays)
    return holidays, workdays, frozenset(d.year for d in holidays)
