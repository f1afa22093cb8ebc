"""Monthly contract KPIs from records whose outcome is known by construction."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from caiwei.desk import flow, services
from caiwei.desk.kpi import monthly_kpis
from caiwei.desk.models import Ticket, TicketChange
from caiwei.web.templatetags.caiwei import percent

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db
FIELDS = {
    "system": "国库集中支付",
    "severity": "一般",
    "title": "问题",
    "description": "描述",
    "requester_name": "经办人（演示）",
}


def ticket_at(user, region, opened, kind="故障", changes=()):
    ticket = services.create_ticket(user, region=region, ticket_type=kind, **FIELDS)
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=opened)
    status = flow.NEW
    for minutes, new in changes:
        TicketChange.objects.create(
            ticket=ticket, at=opened + timedelta(minutes=minutes), old_status=status, new_status=new
        )
        status = new
    resolved = next((opened + timedelta(minutes=m) for m, s in changes if s == flow.RESOLVED), None)
    Ticket.objects.filter(pk=ticket.pk).update(status=status, resolved_at=resolved)
    return ticket


def test_monthly_kpis(users, regions):
    agent, city = users["agent"], regions["152500000"]
    # xilingol: 2 business hours to respond. Tuesday 2026-11-10 09:00.
    day = datetime(2026, 11, 10, 9, tzinfo=SH)
    ticket_at(agent, city, day, changes=[(30, flow.RESPONDED)])  # in time
    ticket_at(agent, city, day, changes=[(60 * 5 + 30, flow.RESPONDED)])  # 14:30 → 3.5 business hours: late
    ticket_at(agent, city, day, kind="咨询", changes=[(10, flow.RESPONDED), (120, flow.RESOLVED)])  # same day
    ticket_at(
        agent, city, day, kind="咨询", changes=[(10, flow.RESPONDED), (60 * 25, flow.RESOLVED)]
    )  # next day
    for i in range(9):
        services.log_call(
            agent, region=city, at=day + timedelta(minutes=i), answered=True, caller_number=f"{i}"
        )
    services.log_call(agent, region=city, at=day, answered=False, caller_number="x")
    k = monthly_kpis(agent, "2026-11")
    assert k["tickets"] == 4 and k["hotline"]["answer_rate"] == 0.9
    assert k["first_response_rate"] == 0.75
    assert k["same_day_closure_rate"] == 0.5
    breaches = {b["severity"]: b for b in k["breaches"]}
    assert breaches["一般"]["first_response"] == 1
    assert monthly_kpis(agent, "2026-10")["tickets"] == 0
    with pytest.raises(ValueError, match="YYYY-MM"):
        monthly_kpis(agent, "2026/11")


def test_dashboard_page(users, regions, client_for):
    html = client_for(users["pm"]).get("/desk/dashboard/?month=2026-11").content.decode()
    assert "考核看板" in html and 'id="kpi-data"' in html
    assert client_for(users["unit"]).get("/desk/dashboard/").status_code == 403


def test_percent_filter():
    assert (percent(None), percent(0.9), percent(0.9655), percent(1)) == ("-", "90%", "96.5%", "100%")
