"""Tickets through the page and the API: numbering, region scoping, the status flow and the SLA clocks it drives."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from caiwei.desk import flow, services
from caiwei.desk.models import SlaRule, Ticket, TicketChange
from caiwei.desk.presets import PRESETS
from caiwei.desk.sla import SEVERITIES, TYPES
from caiwei.desk.tests.common import FIELDS as COMMON

SH = ZoneInfo("Asia/Shanghai")
FIELDS = COMMON | {"requester_org": "某县教育局"}


def test_flow_rules():
    flow.check_transition(flow.NEW, flow.RESPONDED)
    with pytest.raises(flow.TransitionError, match="不能改为“已关闭”"):
        flow.check_transition(flow.NEW, flow.CLOSED)
    t0 = datetime(2026, 11, 24, 9, tzinfo=SH)
    changes = [
        flow.Change(t0 + timedelta(minutes=m), old, new)
        for m, old, new in [
            (5, flow.NEW, flow.RESPONDED),
            (10, flow.RESPONDED, flow.WAITING),
            (70, flow.WAITING, flow.IN_PROGRESS),
            (90, flow.IN_PROGRESS, flow.RESOLVED),
            (200, flow.RESOLVED, flow.IN_PROGRESS),
            (240, flow.IN_PROGRESS, flow.WAITING),
        ]
    ]
    line = flow.timeline(changes)
    assert line.responded_at == t0 + timedelta(minutes=5) and line.resolved_at is None
    assert [(p.start, p.end) for p in line.pauses] == [
        (t0 + timedelta(minutes=10), t0 + timedelta(minutes=70)),
        (t0 + timedelta(minutes=240), None),
    ]
    assert line.resolved_history == [t0 + timedelta(minutes=90)] and line.reopened_at == [
        t0 + timedelta(minutes=200)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("code", sorted(PRESETS))
def test_presets_as_data_reproduce_the_engine_presets(code):
    policy = services.apply_preset(code)
    assert SlaRule.objects.filter(policy=policy).exists()
    stored = policy.engine()
    for severity in SEVERITIES:
        for kind in TYPES:
            for periods in ((), ("year-end",)):
                assert stored.targets(severity, kind, periods) == PRESETS[code].targets(
                    severity, kind, periods
                )
    services.apply_preset(code)  # applying again resets, it does not duplicate
    assert policy.rules.count() == SlaRule.objects.filter(policy=policy).count()


@pytest.mark.django_db
def test_agent_logs_and_works_a_ticket_from_the_pages(users, regions, client_for):
    agent = client_for(users["agent"])
    response = agent.post(
        "/desk/new/",
        {**FIELDS, "region": regions["152502000"].pk, "channel": "hotline", "requester_kind": "unit"},
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/desk/{ticket.number}/"
    assert ticket.number == f"GD{datetime.now(SH):%Y%m%d}0001" and ticket.policy.code == "xilingol"
    assert ticket.due_first_response is not None and ticket.due_resolution is not None
    queue = agent.get("/desk/").content.decode()
    assert ticket.number in queue
    for target in (flow.RESPONDED, flow.WAITING, flow.IN_PROGRESS):
        agent.post(f"/desk/{ticket.number}/act/", {"action": "status", "status": target, "note": ""})
    ticket.refresh_from_db()
    assert ticket.status == flow.IN_PROGRESS and ticket.responded_at is not None
    assert list(ticket.changes.values_list("new_status", flat=True)) == [
        flow.RESPONDED,
        flow.WAITING,
        flow.IN_PROGRESS,
    ]
    # Escalate to 二线.
    agent.post(
        f"/desk/{ticket.number}/act/",
        {"action": "assign", "assignee": users["engineer"].pk, "tier": "second"},
    )
    ticket.refresh_from_db()
    assert ticket.assignee == users["engineer"] and ticket.tier == "second"
    engineer = client_for(users["engineer"])
    engineer.post(
        f"/desk/{ticket.number}/act/", {"action": "status", "status": flow.RESOLVED, "note": "已重发凭证"}
    )
    page = engineer.get(f"/desk/{ticket.number}/").content.decode()
    assert "已解决" in page and "已重发凭证" in page and "按时完成" in page
    bad = engineer.post(
        f"/desk/{ticket.number}/act/", {"action": "status", "status": flow.WAITING}, follow=True
    )
    assert "不能改为“等待用户”" in bad.content.decode()


@pytest.mark.django_db
def test_region_scoping_on_create_and_list(users, regions, client_for, token_for):
    with pytest.raises(PermissionDenied, match="无权在区划"):
        services.create_ticket(users["unit"], region=regions["152501000"], **FIELDS)
    mine = services.create_ticket(users["unit"], region=regions["152502000"], **FIELDS)
    other = services.create_ticket(users["bank"], region=regions["152501000"], **FIELDS)
    assert mine.requester == users["unit"]
    agent = client_for(users["agent"]).get("/api/desk/tickets", **token_for(users["agent"])).json()
    assert {t["number"] for t in agent} == {mine.number, other.number}
    unit = client_for(users["unit"]).get("/api/desk/tickets", **token_for(users["unit"])).json()
    assert [t["number"] for t in unit] == [mine.number]
    assert client_for(users["unit"]).get(f"/api/desk/tickets/{other.number}").status_code == 404
    assert client_for(users["unit"]).get("/desk/").status_code == 403  # the queue is the O&M team's
    assert client_for(users["auditor"]).get("/api/desk/tickets").status_code == 403


@pytest.mark.django_db
def test_api_create_and_status(users, regions, client_for):
    client = client_for(users["agent"])
    created = client.post(
        "/api/desk/tickets", json.dumps({**FIELDS, "region": "152500000"}), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    number = created.json()["number"]
    ok = client.post(
        f"/api/desk/tickets/{number}/status",
        json.dumps({"status": "responded"}),
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["responded_at"] is not None
    bad = client.post(
        f"/api/desk/tickets/{number}/status",
        json.dumps({"status": "closed"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "不能改为" in bad.json()["detail"]
    invalid = client.post(
        "/api/desk/tickets",
        json.dumps({**FIELDS, "region": "152500000", "ticket_type": "投诉"}),
        content_type="application/json",
    )
    assert invalid.status_code == 400 and "ticket_type" in invalid.json()["errors"]
    unit = client_for(users["unit"]).post(
        f"/api/desk/tickets/{number}/status",
        json.dumps({"status": "in_progress"}),
        content_type="application/json",
    )
    assert unit.status_code in (403, 404)  # 404 when the route policy finds the ticket out of reach


@pytest.mark.django_db
def test_pause_extends_the_stored_due_time(users, regions):
    ticket = services.create_ticket(users["agent"], region=regions["152500000"], **FIELDS)
    ticket.opened_at = datetime(2026, 11, 24, 9, 0, tzinfo=SH)
    ticket.save()
    TicketChange.objects.create(
        ticket=ticket,
        at=datetime(2026, 11, 24, 9, 30, tzinfo=SH),
        old_status=flow.NEW,
        new_status=flow.WAITING,
    )
    TicketChange.objects.create(
        ticket=ticket,
        at=datetime(2026, 11, 25, 9, 30, tzinfo=SH),
        old_status=flow.WAITING,
        new_status=flow.IN_PROGRESS,
    )
    states = services.clock_states(ticket, now=datetime(2026, 11, 25, 10, tzinfo=SH))
    # xilingol fault: 3 workdays of running time; a full business day waited → due moves a day, to Mon 09:00.
    assert states["resolution"].due == datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    assert states["first_response"].met_at == datetime(2026, 11, 24, 9, 30, tzinfo=SH)
    with pytest.raises(ValidationError):
        services.comment(users["agent"], ticket, "   ")


@pytest.mark.django_db
def test_vendor_work_order_from_the_page(users, regions, client_for):
    from django.utils import timezone

    ticket = services.create_ticket(users["agent"], region=regions["152500000"], **FIELDS)
    engineer = client_for(users["engineer"])
    due = (timezone.localdate() + timedelta(days=5)).isoformat()
    engineer.post(
        f"/desk/{ticket.number}/act/",
        {
            "action": "vendor",
            "reference": "SJ-2026-0815",
            "due": due,
            "vendor": "省级开发团队",
            "note": "凭证签章服务异常",
        },
    )
    ticket.refresh_from_db()
    order = ticket.vendor_orders.get()
    assert ticket.tier == "vendor" and order.reference == "SJ-2026-0815" and not order.overdue
    engineer.post(
        f"/desk/{ticket.number}/act/",
        {"action": "follow_up", "order": order.pk, "note": "厂商已给出补丁", "status": "answered"},
    )
    order.refresh_from_db()
    assert order.status == "answered" and order.follow_ups.count() == 2
    page = engineer.get(f"/desk/{ticket.number}/").content.decode()
    assert "SJ-2026-0815" in page and "厂商已给出补丁" in page
    duplicate = engineer.post(
        f"/desk/{ticket.number}/act/",
        {"action": "vendor", "reference": "SJ-2026-0815", "due": due},
        follow=True,
    )
    assert "已登记" in duplicate.content.decode()
    past = engineer.post(
        f"/desk/{ticket.number}/act/",
        {"action": "vendor", "reference": "X-1", "due": "2020-01-01"},
        follow=True,
    )
    assert "不能早于今天" in past.content.decode()


@pytest.mark.django_db
def test_policy_follows_the_region_tree(users, regions):
    foshan = services.apply_preset("foshan")
    nantong = services.apply_preset("nantong")
    foshan.regions.add(regions["152500000"])
    nantong.regions.add(regions["152501000"])
    county = services.create_ticket(users["agent"], region=regions["152501000"], **FIELDS)
    league_county = services.create_ticket(users["agent"], region=regions["152502000"], **FIELDS)
    assert county.policy == nantong  # the county's own policy wins over the league's
    assert league_county.policy == foshan  # inherited from the league
    foshan.regions.clear()
    assert (
        services.create_ticket(users["agent"], region=regions["152502000"], **FIELDS).policy.code
        == "xilingol"
    )
