"""Importing a State Council holiday notice: page, API and command; errors name the line and write nothing;
imported days change due instants; the page and the worker's tick warn about a year with no schedule."""

import logging
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.bizcalendar import engine, jobs, notice, statutory
from caiwei.bizcalendar.models import HolidayNotice, HolidayNoticeDay
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# Hand-written for the test (2027-01-01 is a Friday): 元旦 joined to the weekend, an extra weekday off on Monday
# 01-04, and Saturday 01-09 a make-up working day.
NOTICE_2027 = """# 国务院办公厅关于2027年部分节假日安排的通知（测试用）
2027-01-01~2027-01-04 休 元旦
2027-01-09 班 元旦调休
2027-02-05～2027-02-11 休 春节
"""


@pytest.fixture(autouse=True)
def late_2026(monkeypatch):
    """Today is 2026-11-15 (next year's schedule is due), and no package data covers 2027 anyway."""
    monkeypatch.setattr(notice.timezone, "localdate", lambda *a: date(2026, 11, 15))
    jobs._warned.clear()


def due(client, start, minutes):
    response = client.get("/api/calendar/workday/due", {"start": start, "minutes": minutes})
    assert response.status_code == 200, response.content
    return response.json()["due"]


def test_notice_adds_the_schedule_and_due_instants_follow(users, client_for):
    client = client_for(users["pm"])
    # Law days only: 元旦 (Friday) then the weekend; Monday 01-04 works, Saturday 01-09 does not.
    assert due(client, "2026-12-31T17:00+08:00", 120) == "2027-01-04T09:30:00+08:00"
    assert due(client, "2027-01-08T17:00+08:00", 120) == "2027-01-11T09:30:00+08:00"
    response = client.post(
        "/api/calendar/notices", {"year": 2027, "text": NOTICE_2027}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["imported"] and body["workdays"] == ["2027-01-09"] and "2027-01-04" in body["holidays"]
    assert due(client, "2026-12-31T17:00+08:00", 120) == "2027-01-05T09:30:00+08:00"
    assert due(client, "2027-01-08T17:00+08:00", 120) == "2027-01-09T09:30:00+08:00"
    # The SLA machinery reads the notice too (specs are built afresh after the import).
    from caiwei.desk.services import calendars

    workday = calendars()["workday"]
    assert engine.is_business_day(workday, date(2027, 1, 9))
    assert not engine.is_business_day(workday, date(2027, 1, 4))
    # Law days the notice does not list stay off, and the preview said so.
    assert not engine.is_business_day(workday, date(2027, 10, 1))
    assert any("2027-10-01" in w for w in body["warnings"])
    event = AuditEvent.objects.filter(action=AuditAction.ADMIN, object_type="bizcalendar.holidaynotice").get()
    assert event.actor == users["pm"].username and event.after["2027-01-09"] == "workday"


def test_notice_takes_precedence_over_the_package(users):
    # 2026-10-10 is a 调休 Saturday in the package; a notice for 2026 saying otherwise wins.
    notice.import_notice(2026, "2026-10-01~2026-10-07 休 国庆节\n2026-10-08 休\n")
    from caiwei.desk.services import calendars

    spec = calendars()["workday"]
    assert not engine.is_business_day(spec, date(2026, 10, 10))
    assert not engine.is_business_day(spec, date(2026, 10, 8))
    # The notice replaces the package's whole 2026 schedule: its 调休 Saturday 02-14 is an ordinary Saturday now,
    # while the law's days (春节 02-16..19) stay off.
    assert not engine.is_business_day(spec, date(2026, 2, 14))
    assert all(not engine.is_business_day(spec, d) for d in statutory.law_holidays(2026))


BAD = [
    ("2027-01-01 休\n2027-02-30 休 春节\n", "第 2 行：日期“2027-02-30”无效"),
    ("2027-01-01 休\n\n2027-01-09 假 调休\n", "第 3 行：类型“假”无法识别"),
    ("2027-01-01 休\n2027-01-02 休\n2027-01-01 班\n", "第 3 行：日期 2027-01-01 与第 1 行重复"),
    ("2027-01-01 休\n2026-10-01 休\n", "第 2 行：日期 2026-10-01 不属于 2027 年"),
    ("2027-01-01~2027-01-03 休\n2027-01-03 班\n", "第 2 行：日期 2027-01-03 与第 1 行重复"),
    ("2027-01-01\n", "第 1 行：缺少类型"),
    ("# 只有注释\n", "通知内容为空"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_notice_names_the_line_and_writes_nothing(users, client_for, text, message):
    notice.import_notice(2027, "2027-01-04 休 旧通知\n")
    before = (HolidayNotice.objects.get().pk, list(HolidayNoticeDay.objects.values_list("date", "kind")))
    client = client_for(users["pm"])
    events = AuditEvent.objects.count()
    response = client.post(
        "/api/calendar/notices", {"year": 2027, "text": text}, content_type="application/json"
    )
    assert response.status_code == 400 and message in response.json()["detail"], response.content
    assert (
        HolidayNotice.objects.get().pk,
        list(HolidayNoticeDay.objects.values_list("date", "kind")),
    ) == before
    assert AuditEvent.objects.count() == events


def test_year_outside_range_and_december_before(users):
    with pytest.raises(Exception, match="年份 2101"):
        notice.parse_notice(2101, "2101-01-01 休")
    parsed = notice.parse_notice(2027, "2026-12-26 班 元旦调休\n2027-01-01 休")  # a 元旦 调休 in December
    assert parsed.workdays == [date(2026, 12, 26)]


def test_page_warns_until_the_notice_is_imported(users, client_for):
    client = client_for(users["pm"])
    page = client.get("/calendar/").content.decode()
    assert "holiday-notice-warning" in page and "2027 年的放假调休安排尚未导入" in page
    form = client.get("/calendar/notice/")
    assert form.status_code == 200 and 'value="2027"' in form.content.decode()
    preview = client.post("/calendar/notice/", {"year": 2027, "text": NOTICE_2027, "action": "preview"})
    assert "确认导入" in preview.content.decode() and not HolidayNotice.objects.exists()
    bad = client.post("/calendar/notice/", {"year": 2027, "text": "2027-13-01 休", "action": "confirm"})
    assert "第 1 行：日期“2027-13-01”无效" in bad.content.decode() and not HolidayNotice.objects.exists()
    done = client.post("/calendar/notice/", {"year": 2027, "text": NOTICE_2027, "action": "confirm"})
    assert done.status_code == 302
    assert "holiday-notice-warning" not in client.get("/calendar/").content.decode()


def test_page_and_api_need_calendar_manage(users, client_for):
    client = client_for(users["agent"])
    assert client.get("/calendar/notice/").status_code == 403
    response = client.post(
        "/api/calendar/notices", {"year": 2027, "text": NOTICE_2027}, content_type="application/json"
    )
    assert response.status_code == 403 and not HolidayNotice.objects.exists()


def test_tick_warns_once_a_day_and_stops_after_import(caplog):
    caplog.set_level(logging.WARNING, logger="caiwei.bizcalendar")
    assert jobs.holiday_notice_tick() == [2027]
    assert jobs.holiday_notice_tick() == [2027]
    warnings = [r for r in caplog.records if "2027 年的放假调休安排尚未导入" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    notice.import_notice(2027, NOTICE_2027)
    assert jobs.holiday_notice_tick() == []


def test_tick_before_november_checks_this_year_only(monkeypatch):
    monkeypatch.setattr(notice.timezone, "localdate", lambda *a: date(2027, 10, 31))
    assert notice.missing_years() == [2027]
    monkeypatch.setattr(notice.timezone, "localdate", lambda *a: date(2026, 10, 31))
    assert notice.missing_years() == []  # the package has 2026


def test_command_imports_and_refuses_bad_input(users, monkeypatch, tmp_path):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    good, bad = tmp_path / "2027.txt", tmp_path / "bad.txt"
    good.write_text(NOTICE_2027, encoding="utf-8")
    bad.write_text("2027-01-01 休\n2027-01-09 调 调休\n", encoding="utf-8")
    name = users["pm"].username
    with pytest.raises(CommandError, match="第 2 行：类型“调”无法识别"):
        call_command("calendar", "import-notice", "--year", "2027", "--file", str(bad), "--actor", name)
    assert not HolidayNotice.objects.exists()
    out = StringIO()
    call_command(
        "calendar", "import-notice", "--year", "2027", "--file", str(good), "--actor", name, stdout=out
    )
    assert "已导入 2027 年放假安排：休息 11 天，调休上班 1 天" in out.getvalue()
    assert HolidayNotice.objects.get().imported_by == name
