"""The hotline log: missed calls get a same-business-day callback; answer and callback rates; a call opens a ticket."""

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from caiwei.desk import kpi, services
from caiwei.desk.models import HotlineCall, Ticket, TicketAssignment

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def test_missed_call_callback_due_same_business_day(users, regions):
    city = regions["152500000"]
    call = services.log_call(
        users["agent"],
        region=city,
        at=datetime(2026, 11, 24, 10, tzinfo=SH),
        answered=False,
        caller_number="0479-0000000",
    )
    assert call.callback_due == datetime(2026, 11, 24, 18, tzinfo=SH)
    # After hours on the eve of National Day: due at the close of the next business day, 10-08.
    late = services.log_call(
        users["agent"],
        region=city,
        at=datetime(2026, 9, 30, 19, tzinfo=SH),
        answered=False,
        caller_number="0479-0000001",
    )
    assert late.callback_due == datetime(2026, 10, 8, 18, tzinfo=SH)
    answered = services.log_call(users["agent"], region=city, answered=True, caller_number="0479-0000002")
    assert answered.callback_due is None
    with pytest.raises(ValidationError, match="已接听"):
        services.call_back(users["agent"], answered)


def test_rates(users, regions):
    city = regions["152500000"]
    for i in range(18):
        services.log_call(users["agent"], region=city, answered=True, caller_number=f"0479-10000{i:02d}")
    missed = [
        services.log_call(users["agent"], region=city, answered=False, caller_number=f"0479-2000000{i}")
        for i in range(2)
    ]
    services.call_back(users["agent"], missed[0], "已解答")
    with pytest.raises(ValidationError, match="已于"):
        services.call_back(users["agent"], missed[0])
    later = max(c.callback_due for c in missed) + timedelta(minutes=1)
    result = kpi.hotline_kpis(HotlineCall.objects.all(), later)
    assert (result["calls"], result["answered"], result["missed"], result["callback_in_time"]) == (
        20,
        18,
        2,
        1,
    )
    assert result["answer_rate"] == 0.9 and result["callback_rate"] == 0.5 and result["callback_pending"] == 0
    # Before the second call's deadline it is 进行中: neither met nor missed, outside the rate.
    before = max(timezone.now(), missed[1].callback_due - timedelta(seconds=1))
    result = kpi.hotline_kpis(HotlineCall.objects.all(), before)
    assert (result["callback_due"], result["callback_pending"], result["callback_rate"]) == (1, 1, 1.0)


def test_scoping_and_roles(users, regions):
    with pytest.raises(PermissionDenied):
        services.log_call(users["unit"], region=regions["152502000"], answered=True, caller_number="1")
    with pytest.raises(PermissionDenied):
        services.log_call(users["agent"], region=regions["150000000"], answered=True, caller_number="1")


def test_pages_log_call_back_and_open_ticket(users, regions, client_for):
    client = client_for(users["agent"])
    response = client.post(
        "/desk/calls/",
        {
            "region": regions["152501000"].pk,
            "at": "2026-11-24T10:00",
            "caller_number": "0479-3000000",
            "caller_name": "来电人（演示）",
            "summary": "凭证退回怎么处理",
        },
    )
    assert response.status_code == 302
    call = HotlineCall.objects.get()
    assert not call.answered and call.callback_due == datetime(2026, 11, 24, 18, tzinfo=SH)
    page = client.get("/desk/calls/").content.decode()
    assert f'data-pending="{call.pk}"' in page
    client.post(f"/desk/calls/{call.pk}/callback/", {"summary": "已回拨解答"})
    call.refresh_from_db()
    assert call.callback_at is not None and call.callback_by == users["agent"]
    form = client.get(f"/desk/new/?call={call.pk}").content.decode()
    assert "0479-3000000" in form and "凭证退回怎么处理" in form
    client.post(
        f"/desk/new/?call={call.pk}",
        {
            "call": call.pk,
            "region": regions["152501000"].pk,
            "channel": "hotline",
            "system": "国库集中支付",
            "ticket_type": "咨询",
            "severity": "一般",
            "title": "凭证退回怎么处理",
            "description": "来电咨询",
            "requester_kind": "unit",
            "requester_name": "来电人（演示）",
            "requester_phone": "0479-3000000",
        },
    )
    call.refresh_from_db()
    assert call.ticket == Ticket.objects.get() and call.ticket.channel == "hotline"
    assert client_for(users["unit"]).get("/desk/calls/").status_code == 403


def test_api_calls_callback_rating_and_kpis(users, regions, client_for):
    import json

    from caiwei.desk import flow

    agent = client_for(users["agent"])
    created = agent.post(
        "/api/desk/calls",
        json.dumps({"region": "152500000", "answered": False, "caller_number": "0479-4000000"}),
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json()["callback_due"] is not None
    call_id = created.json()["id"]
    assert [c["id"] for c in agent.get("/api/desk/calls?pending=true").json()] == [call_id]
    assert agent.post(f"/api/desk/calls/{call_id}/callback").json()["callback_at"] is not None
    assert agent.get("/api/desk/calls?pending=true").json() == []
    ticket = services.create_ticket(
        users["unit"],
        region=regions["152502000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
    )
    services.change_status(users["agent"], ticket, flow.RESOLVED)
    rated = client_for(users["unit"]).post(
        f"/api/desk/tickets/{ticket.number}/rating", json.dumps({"score": 4}), content_type="application/json"
    )
    assert rated.status_code == 201 and rated.json()["score"] == 4
    k = client_for(users["pm"]).get("/api/desk/kpis").json()
    assert k["hotline"]["calls"] == 1 and k["satisfaction"] == 1.0
    assert client_for(users["pm"]).get("/api/desk/kpis?month=bad").status_code in (400, 422)


def test_call_attaches_to_an_existing_ticket_and_api_actions(users, regions, client_for):
    import json

    from caiwei.desk.models import Complaint

    ticket = services.create_ticket(
        users["agent"],
        region=regions["152501000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
    )
    agent = client_for(users["agent"])
    agent.post(
        "/desk/calls/",
        {
            "region": regions["152501000"].pk,
            "at": "2026-11-24T10:00",
            "answered": "on",
            "caller_number": "0479-6000000",
            "ticket_number": ticket.number,
        },
    )
    assert HotlineCall.objects.get().ticket == ticket
    bad = agent.post(
        "/desk/calls/",
        {
            "region": regions["152501000"].pk,
            "at": "2026-11-24T10:00",
            "answered": "on",
            "caller_number": "1",
            "ticket_number": "GD000000000000",
        },
    )
    assert "不存在" in bad.content.decode() and HotlineCall.objects.count() == 1
    api = agent.post(
        "/api/desk/calls",
        json.dumps({"region": "152501000", "answered": True, "caller_number": "2", "ticket": ticket.number}),
        content_type="application/json",
    )
    assert api.json()["ticket"] == ticket.number
    post = lambda path, body: agent.post(path, json.dumps(body), content_type="application/json")  # noqa: E731
    assert post(f"/api/desk/tickets/{ticket.number}/comments", {"body": "已电话回复"}).status_code == 201
    assigned = post(f"/api/desk/tickets/{ticket.number}/assign", {"assignee": "t_engineer", "tier": "second"})
    assert assigned.json()["assignee"] == "t_engineer" and assigned.json()["tier"] == "second"
    vendor = post(
        f"/api/desk/tickets/{ticket.number}/vendor-orders",
        {"reference": "SJ-1", "due": str(date.today() + timedelta(days=30))},
    )
    assert vendor.status_code == 201
    complaint = post(
        "/api/desk/complaints", {"region": "152501000", "complainant": "来电人", "description": "回复慢"}
    )
    assert complaint.status_code == 201
    cid = complaint.json()["id"]
    assert agent.post(f"/api/desk/complaints/{cid}/decision?valid=true").status_code == 403
    assert (
        client_for(users["pm"]).post(f"/api/desk/complaints/{cid}/decision?valid=true").json()["valid"]
        is True
    )
    assert Complaint.objects.get().decided_by == users["pm"]
    report = client_for(users["pm"]).get("/api/desk/report")
    assert report.status_code == 200 and report.content[:2] == b"PK"


TICKET_POST = {
    "channel": "hotline",
    "system": "国库集中支付",
    "ticket_type": "咨询",
    "severity": "一般",
    "title": "由来电登记",
    "description": "来电咨询",
    "requester_kind": "unit",
    "requester_name": "某人",
}


@pytest.fixture
def call(users, regions):
    return services.log_call(
        users["agent"],
        region=regions["152502000"],
        answered=True,
        caller_number="13900000000",
        caller_name="来电人甲",
        summary="密码重置，身份证后四位 1234",
    )


@pytest.mark.parametrize("who", ["unit", "bank", "finance", "approver"])
def test_call_is_not_disclosed_to_those_who_do_not_work_calls(users, regions, client_for, call, who):
    page = client_for(users[who]).get(f"/desk/new/?call={call.pk}")
    assert page.status_code == 200  # the plain form
    body = page.content.decode()
    assert "13900000000" not in body and "来电人甲" not in body and "身份证" not in body
    assert f'name="call" value="{call.pk}"' not in body


def test_agent_of_another_region_gets_the_plain_form(users, regions, make_user, client_for, call):
    county = make_user("t_agent_county", "agent", regions=("152522000",))
    body = client_for(county).get(f"/desk/new/?call={call.pk}").content.decode()
    assert "13900000000" not in body and "来电人甲" not in body


@pytest.mark.parametrize("who", ["unit", "finance", "county"])
def test_posting_a_call_one_may_not_use_is_refused_and_not_linked(
    users, regions, make_user, client_for, call, who
):
    user = make_user("t_agent_county", "agent", regions=("152522000",)) if who == "county" else users[who]
    region = user.regions.first()
    response = client_for(user).post("/desk/new/", {**TICKET_POST, "call": call.pk, "region": region.pk})
    assert response.status_code in (403, 404)
    if response.status_code == 403:
        assert "不能由该来电登记工单" in response.content.decode()
    call.refresh_from_db()
    assert call.ticket is None and not Ticket.objects.exists()


def test_a_linked_call_is_not_linked_again(users, regions, client_for, call):
    agent = client_for(users["agent"])
    form = agent.get(f"/desk/new/?call={call.pk}").content.decode()
    assert "13900000000" in form and "来电人甲" in form
    agent.post("/desk/new/", {**TICKET_POST, "call": call.pk, "region": regions["152502000"].pk})
    call.refresh_from_db()
    first = call.ticket
    assert first is not None
    again = agent.post("/desk/new/", {**TICKET_POST, "call": call.pk, "region": regions["152502000"].pk})
    assert "已关联工单" in again.content.decode()
    call.refresh_from_db()
    assert call.ticket == first and Ticket.objects.count() == 1
    assert (
        "13900000000"
        not in agent.get(f"/desk/new/?call={call.pk}").content.decode().split("以下为普通登记")[1]
    )


def test_answered_is_ticked_by_default(users, client_for):
    page = client_for(users["agent"]).get("/desk/calls/").content.decode()
    (checkbox,) = re.findall(r'<input[^>]*name="answered"[^>]*>', page)
    assert "checked" in checkbox
    assert 'name="then" value="ticket"' in page  # 登记并开工单


def test_log_call_then_open_ticket_links_both_ways(users, regions, client_for):
    agent = client_for(users["agent"])
    logged = agent.post(
        "/desk/calls/",
        {
            "region": regions["152502000"].pk,
            "at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "answered": "on",
            "caller_number": "0479-7000000",
            "caller_name": "来电人乙",
            "caller_org": "某县财政局",
            "summary": "授权支付凭证被退回",
            "then": "ticket",
        },
    )
    call = HotlineCall.objects.get()
    assert call.answered and logged.status_code == 302 and logged.url == f"/desk/new/?call={call.pk}"
    form = agent.get(logged.url).content.decode()
    for value in ("0479-7000000", "来电人乙", "某县财政局", "授权支付凭证被退回", 'value="hotline" selected'):
        assert value in form
    assert re.search(rf'<option value="{regions["152502000"].pk}" selected>', form)
    saved = agent.post(
        "/desk/new/",
        {
            **TICKET_POST,
            "call": call.pk,
            "region": regions["152502000"].pk,
            "requester_name": "来电人乙",
            "requester_org": "某县财政局",
            "requester_phone": "0479-7000000",
        },
    )
    ticket = Ticket.objects.get()
    call.refresh_from_db()
    assert saved.url == f"/desk/{ticket.number}/" and call.ticket == ticket
    page = agent.get(saved.url).content.decode()
    assert f"已登记工单 {ticket.number}，已关联" in page and "来电 0479-7000000" in page
    assert f'data-call="{call.pk}"' in page and f'href="/desk/calls/?call={call.pk}"' in page
    assert 'data-event="call"' in page
    listing = agent.get(f"/desk/calls/?call={call.pk}").content.decode()
    assert f'data-call="{call.pk}"' in listing and f"/desk/{ticket.number}/" in listing
    # Logging without 开工单 stays on the call log.
    plain = agent.post(
        "/desk/calls/",
        {
            "region": regions["152502000"].pk,
            "at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "answered": "on",
            "caller_number": "1",
        },
    )
    assert plain.url == "/desk/calls/"


def test_assignment_shows_a_message_and_enters_the_history(users, regions, client_for):
    ticket = services.create_ticket(
        users["agent"],
        region=regions["152502000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
    )
    agent = client_for(users["agent"])
    response = agent.post(
        f"/desk/{ticket.number}/act/",
        {"action": "assign", "assignee": users["engineer"].pk, "tier": "second"},
        follow=True,
    )
    page = response.content.decode()
    assert "已分派给 t_engineer（二线）" in page
    assert 'data-event="assigned"' in page
    (row,) = TicketAssignment.objects.filter(ticket=ticket)
    assert (row.by, row.from_user, row.to_user, row.old_tier, row.new_tier) == (
        users["agent"],
        None,
        users["engineer"],
        "first",
        "second",
    )
    again = agent.post(
        f"/desk/{ticket.number}/act/",
        {"action": "assign", "assignee": users["engineer"].pk, "tier": "second"},
        follow=True,
    )
    assert "处理人与处理层级未变化" in again.content.decode() and TicketAssignment.objects.count() == 1
    api = agent.post(
        f"/api/desk/tickets/{ticket.number}/assign",
        json.dumps({"assignee": "t_pm"}),
        content_type="application/json",
    )
    assert api.status_code == 200 and api.json()["assignee"] == "t_pm"
    detail = agent.get(f"/api/desk/tickets/{ticket.number}").json()
    assigned = [e for e in detail["timeline"] if e["kind"] == "assigned"]
    assert [(e["data"]["from"], e["data"]["to"], e["data"]["by"]) for e in assigned] == [
        (None, "t_engineer", "t_agent"),
        ("t_engineer", "t_pm", "t_agent"),
    ]
    assert all(e["at"] for e in assigned)
