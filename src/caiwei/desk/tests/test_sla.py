"""SLA presets of every seed against due times computed by hand, across holidays, 调休, pauses, key periods, reopen."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.bizcalendar.engine import CalendarSpec, KeyPeriod, china_calendar
from caiwei.desk.presets import PRESETS
from caiwei.desk.sla import Interval, Target, Ticket, due_instant, evaluate, running_time

SH = ZoneInfo("Asia/Shanghai")
YEAR_END = KeyPeriod("year-end", "年结", date(2026, 12, 25), date(2027, 1, 20))
CALENDARS = {
    "workday": china_calendar(key_periods=(YEAR_END,)),
    "always": CalendarSpec(always_open=True, key_periods=(YEAR_END,)),
}


def at(mo, d, h, mi=0, y=2026) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def dues(preset, severity, kind, opened, now=None, **ticket):
    states = evaluate(PRESETS[preset], CALENDARS, Ticket(opened, severity, kind, **ticket), now or opened)
    return {clock: state.due for clock, state in states.items()}, states


@pytest.mark.parametrize(
    ("preset", "severity", "kind", "opened", "first_response", "resolution"),
    [
        # foshan: 重大 is round the clock, even on National Day.
        ("foshan", "重大", "故障", at(10, 3, 10), at(10, 3, 10, 10), at(10, 3, 11)),
        ("foshan", "紧急", "故障", at(10, 3, 23, 50), at(10, 4, 0, 5), at(10, 4, 1, 50)),
        # foshan 一般: 30 business minutes; 10 before the holiday, 20 after it.
        ("foshan", "一般", "咨询", at(9, 30, 17, 50), at(10, 8, 8, 50), None),
        # daxing: other faults 1 h in working hours, Friday evening → Monday.
        ("daxing", "一般", "故障", at(11, 27, 17, 30), at(11, 30, 9), None),
        ("daxing", "重大", "故障", at(11, 28, 22, 0), at(11, 28, 22, 10), at(11, 29, 0, 0)),
        # nantong: 30 min round the clock; major fault 24 h; general fault 2 business hours over a 调休 Saturday.
        ("nantong", "重大", "故障", at(11, 29, 3), at(11, 29, 3, 30), at(11, 30, 3)),
        ("nantong", "一般", "故障", at(10, 9, 17), at(10, 9, 17, 30), at(10, 10, 9, 30)),
        ("nantong", "一般", "咨询", at(10, 9, 17), at(10, 9, 17, 30), None),
        # xilingol: 2 h response; consultations closed the same business day; faults in 3 workdays.
        ("xilingol", "一般", "咨询", at(11, 24, 10), at(11, 24, 12), at(11, 24, 18)),
        ("xilingol", "一般", "咨询", at(11, 24, 20), at(11, 25, 10, 30), at(11, 25, 18)),
        ("xilingol", "一般", "故障", at(11, 24, 10), at(11, 24, 12), at(11, 27, 10)),
        (
            "xilingol",
            "紧急",
            "故障",
            at(9, 30, 10),
            at(9, 30, 12),
            at(10, 10, 10),
        ),  # holiday, then 调休 Saturday
        # xilingol in 年结: a fault must be fixed within 2 h, round the clock.
        ("xilingol", "一般", "故障", at(12, 27, 10), at(12, 28, 10, 30), at(12, 27, 12)),
        ("xilingol", "一般", "需求", at(12, 28, 10), at(12, 28, 12), None),
    ],
)
def test_due_times_by_hand(preset, severity, kind, opened, first_response, resolution):
    due, _ = dues(preset, severity, kind, opened)
    assert (due["first_response"], due["resolution"]) == (first_response, resolution)


def test_pause_while_waiting_for_the_requester():
    # 30 min response, opened 11:50; waiting 11:55–14:40 stops 5 + 10 business minutes → 15:05.
    due, _ = dues(
        "foshan",
        "一般",
        "故障",
        at(11, 24, 11, 50),
        pauses=[Interval(at(11, 24, 11, 55), at(11, 24, 14, 40))],
    )
    assert due["first_response"] == at(11, 24, 15, 5)
    due, _ = dues(
        "foshan", "一般", "故障", at(11, 24, 9), pauses=[Interval(at(11, 24, 9, 10), at(11, 24, 9, 40))]
    )
    assert due["first_response"] == at(11, 24, 10)


def test_open_pause_stops_the_clock():
    due, states = dues(
        "foshan", "一般", "故障", at(11, 24, 9), now=at(11, 24, 11), pauses=[Interval(at(11, 24, 9, 10))]
    )
    assert due["first_response"] is None and states["first_response"].stopped
    assert states["first_response"].elapsed_minutes == 10 and not states["first_response"].breached


def test_reopen_resumes_the_resolution_clock():
    # 3 workdays from Tue 10:00; resolved after 7 h (Wed 10:00), reopened Thu 10:00: a day of standstill → Mon 10:00.
    due, states = dues(
        "xilingol",
        "一般",
        "故障",
        at(11, 24, 10),
        now=at(11, 26, 10),
        responded_at=at(11, 24, 10, 5),
        resolved_history=[at(11, 25, 10)],
        reopened_at=[at(11, 26, 10)],
    )
    assert due["resolution"] == at(11, 30, 10)
    assert states["resolution"].elapsed_minutes == 7 * 60


def test_warning_breach_and_met():
    _, states = dues("foshan", "一般", "故障", at(11, 24, 9), now=at(11, 24, 9, 25))
    assert states["first_response"].warning and not states["first_response"].breached
    _, states = dues("foshan", "一般", "故障", at(11, 24, 9), now=at(11, 24, 9, 31))
    assert states["first_response"].breached and states["first_response"].remaining_minutes == -1
    _, states = dues(
        "foshan", "一般", "故障", at(11, 24, 9), now=at(11, 24, 15), responded_at=at(11, 24, 9, 20)
    )
    assert not states["first_response"].breached and states["first_response"].met_at == at(11, 24, 9, 20)


def test_unknown_severity_or_type():
    with pytest.raises(ValueError, match="严重程度"):
        dues("foshan", "特急", "故障", at(11, 24, 9))
    with pytest.raises(ValueError, match="工单类型"):
        dues("foshan", "一般", "投诉", at(11, 24, 9))


def test_target_needs_exactly_one_measure():
    with pytest.raises(ValueError):
        Target(minutes=30, workdays=1)


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(SH)
)


@settings(max_examples=150, deadline=None)
@given(
    instants,
    st.integers(1, 5000),
    st.lists(st.tuples(st.integers(0, 20000), st.integers(1, 3000)), max_size=4),
)
def test_running_time_to_due_is_the_target(start, minutes, raw_pauses):
    """Against the calendar engine: the running (unpaused) business time from start to the due instant is exact."""
    from datetime import timedelta

    spec = CALENDARS["workday"]
    stops = [Interval(start + timedelta(minutes=a), start + timedelta(minutes=a + b)) for a, b in raw_pauses]
    due = due_instant(spec, start, timedelta(minutes=minutes), stops)
    assert running_time(spec, start, due, stops) == timedelta(minutes=minutes)
    earlier = due - timedelta(seconds=1)
    assert earlier <= start or running_time(spec, start, earlier, stops) < timedelta(minutes=minutes)


@pytest.mark.django_db
def test_cli_due_json():
    import json
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    call_command(
        "desk",
        "due",
        "--preset",
        "xilingol",
        "--severity",
        "一般",
        "--type",
        "故障",
        "--opened",
        "2026-09-30T10:00+08:00",
        "--json",
        stdout=out,
    )
    assert json.loads(out.getvalue()) == {
        "first_response": "2026-09-30T12:00:00+08:00",
        "update": None,
        "resolution": "2026-10-10T10:00:00+08:00",
    }
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command(
            "desk", "due", "--preset", "foshan", "--severity", "一般", "--type", "故障", "--opened", "昨天"
        )
