"""The stored calendars through the page, the API and the command, against hand-computed due times."""

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from caiwei.bizcalendar.models import BusinessCalendar, CalendarDay, parse_periods

pytestmark = pytest.mark.django_db


def test_api_due_across_national_day(users, client_for, token_for):
    # 2026-09-30 17:30, 60 business minutes: 30 min until 18:00, holiday 10-01..10-07, 30 min on 10-08 (Thursday).
    response = client_for(users["agent"]).get(
        "/api/calendar/workday/due",
        {"start": "2026-09-30T17:30:00+08:00", "minutes": 60},
        **token_for(users["agent"]),
    )
    assert response.status_code == 200, response.content
    assert response.json()["due"] == "2026-10-08T09:00:00+08:00"


def test_api_between_and_errors(users, client_for):
    client = client_for(users["pm"])
    ok = client.get("/api/calendar/workday/between", {"start": "2026-10-09T08:30", "end": "2026-10-12T08:30"})
    # Friday 10-09 (7 h) + make-up Saturday 10-10 (7 h); Sunday off.
    assert ok.json()["business_minutes"] == 14 * 60
    bad = client.get("/api/calendar/workday/due", {"start": "明天", "minutes": 5})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["detail"]
    missing = client.get("/api/calendar/nope/due", {"start": "2026-10-09T08:30", "minutes": 5})
    assert missing.status_code == 400 and "不存在" in missing.json()["detail"]


def test_admin_added_holiday_changes_due(users, client_for):
    calendar = BusinessCalendar.objects.get(code="workday")
    CalendarDay.objects.create(
        calendar=calendar, date=date(2026, 10, 8), kind=CalendarDay.Kind.HOLIDAY, note="停电"
    )
    response = client_for(users["pm"]).get(
        "/api/calendar/workday/due", {"start": "2026-09-30T17:30+08:00", "minutes": 60}
    )
    assert response.json()["due"] == "2026-10-09T09:00:00+08:00"


def test_always_open_calendar(users, client_for):
    response = client_for(users["pm"]).get(
        "/api/calendar/always/due", {"start": "2026-10-01T23:50+08:00", "minutes": 20}
    )
    assert response.json()["due"] == "2026-10-02T00:10:00+08:00"


def test_key_period_reported(users, client_for):
    response = client_for(users["pm"]).get(
        "/api/calendar/workday/due", {"start": "2026-12-28T09:00+08:00", "minutes": 10}
    )
    assert set(response.json()["key_periods"]) == {"12月大支付", "年结"}


def test_command(db):
    out = StringIO()
    call_command("calendar", "due", "--start", "2026-09-30T17:30+08:00", "--minutes", "60", stdout=out)
    assert json.loads(out.getvalue())["due"] == "2026-10-08T09:00:00+08:00"
    with pytest.raises(CommandError, match="不存在"):
        call_command("calendar", "due", "--calendar", "x", "--start", "2026-09-30T17:30", "--minutes", "1")


def test_page_and_calculator(users, client_for):
    client = client_for(users["unit"])
    page = client.get("/calendar/").content.decode()
    assert "工作日历（法定节假日与调休）" in page and "年结" in page
    result = client.get(
        "/calendar/calculate/", {"calendar": "workday", "start": "2026-09-30T17:30", "minutes": 60}
    )
    assert 'data-due="2026-10-08T09:00:00+08:00"' in result.content.decode()


def test_sysadmin_maintains_calendar_but_unit_cannot(users, client_for):
    assert client_for(users["sysadmin"]).get("/admin/bizcalendar/businesscalendar/").status_code == 200
    assert client_for(users["unit"]).get("/admin/bizcalendar/businesscalendar/").status_code in (302, 403)


@pytest.mark.parametrize(
    ("text", "error"),
    [("08:30-12:00,11:00-13:00", "重叠"), ("12:00-08:00", "晚于"), ("8点-12点", "格式")],
)
def test_period_validation(text, error):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=error):
        parse_periods(text)
