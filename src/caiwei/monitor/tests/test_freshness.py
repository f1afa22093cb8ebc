"""Interface freshness on the business calendar, over generated instants: holidays, 调休 workdays and plain days.

The expectation is derived from the calendar rule minute by minute (``is_business_time`` at each minute of the
window; ``is_business_day`` and the deadline for a day's files), not from fixed examples: a quiet link alerts
exactly when every minute of its window was business time; a quiet holiday never alerts, a quiet 调休 Saturday
morning does."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.bizcalendar.engine import china_calendar, is_business_day, is_business_time
from caiwei.monitor.probes import Probe, run_sync

CHINA = ZoneInfo("Asia/Shanghai")
SPEC = china_calendar()
YEAR_DAYS = [d for d in SPEC.holidays if date(2025, 1, 1) <= d <= date(2026, 12, 31)]
MAKEUP_DAYS = sorted(d for d in SPEC.workdays if date(2025, 1, 1) <= d <= date(2026, 12, 31))
HOLIDAYS = sorted(d for d in YEAR_DAYS if d.weekday() < 5 and d not in SPEC.workdays)  # weekday holidays
DAYS = st.one_of(
    st.sampled_from(HOLIDAYS),
    st.sampled_from(MAKEUP_DAYS),
    st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
)
MINUTES = st.integers(min_value=0, max_value=24 * 60 - 1)


@pytest.fixture(scope="module")
def quiet_journal(tmp_path_factory):
    """A message journal whose only message is long before any instant generated here."""
    path = tmp_path_factory.mktemp("fresh") / "journal.jsonl"
    record = {
        "direction": "voucher",
        "bank": "B102",
        "seq": 1,
        "pay_cert_no": "C1",
        "time": "2020-01-02T10:00:00+08:00",
    }
    path.write_text(json.dumps(record) + "\n")
    return str(path)


def instant(day: date, minute: int) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), CHINA)


def probe(path: str, now: datetime, **config) -> dict:
    result = run_sync(
        Probe(
            "freshness",
            {"source": "journal", "path": path, "bank": "B102", "calendar": SPEC, "now": now, **config},
        )
    )
    assert result.ok, result.message
    return result.metrics


@settings(max_examples=150, deadline=None)
@given(day=DAYS, minute=MINUTES, window=st.sampled_from([15, 30, 60, 120]))
def test_a_quiet_link_alerts_exactly_when_the_whole_window_was_business_time(
    quiet_journal, day, minute, window
):
    now = instant(day, minute)
    every_minute_open = all(
        is_business_time(SPEC, now - timedelta(minutes=window) + timedelta(minutes=k)) for k in range(window)
    )
    metrics = probe(quiet_journal, now, mode="window", window_minutes=window)
    assert metrics["count"] == 0
    assert metrics["expected"] == int(every_minute_open)
    assert metrics["fresh"] == int(not every_minute_open)


@settings(max_examples=100, deadline=None)
@given(day=DAYS, minute=MINUTES, deadline=st.sampled_from(["09:00", "10:00", "16:30"]))
def test_a_missing_day_of_files_alerts_only_on_business_days_after_the_deadline(
    quiet_journal, day, minute, deadline
):
    now = instant(day, minute)
    hour, mins = map(int, deadline.split(":"))
    due = is_business_day(SPEC, day) and minute >= hour * 60 + mins
    metrics = probe(quiet_journal, now, mode="daily", deadline=deadline)
    assert metrics["fresh"] == int(not due)


@settings(max_examples=40, deadline=None)
@given(day=st.sampled_from(HOLIDAYS), minute=MINUTES)
def test_a_quiet_holiday_is_not_an_alert(quiet_journal, day, minute):
    assert day not in SPEC.workdays
    metrics = probe(quiet_journal, instant(day, minute), mode="window", window_minutes=60)
    assert metrics["fresh"] == 1 and metrics["expected"] == 0


@settings(max_examples=40, deadline=None)
@given(day=st.sampled_from([d for d in MAKEUP_DAYS if d.weekday() >= 5]))
def test_a_quiet_makeup_workday_morning_is_an_alert(quiet_journal, day):
    """A 调休 Saturday or Sunday is a working day: a link quiet for the hour before 11:00 is late."""
    (start, _), *_ = SPEC.periods
    now = datetime.combine(day, start, CHINA) + timedelta(minutes=90)  # 90 minutes into the first period
    metrics = probe(quiet_journal, now, mode="window", window_minutes=60)
    assert metrics["expected"] == 1 and metrics["fresh"] == 0


@settings(max_examples=40, deadline=None)
@given(day=DAYS, minute=MINUTES, window=st.sampled_from([30, 60]))
def test_traffic_in_the_window_is_never_an_alert(tmp_path_factory, day, minute, window):
    now = instant(day, minute)
    path = tmp_path_factory.mktemp("busy") / "journal.jsonl"
    seen = now - timedelta(minutes=window // 2)
    path.write_text(
        json.dumps(
            {"direction": "voucher", "bank": "B102", "seq": 1, "pay_cert_no": "C", "time": seen.isoformat()}
        )
        + "\n"
    )
    metrics = probe(str(path), now, mode="window", window_minutes=window)
    assert metrics["count"] == 1 and metrics["fresh"] == 1
