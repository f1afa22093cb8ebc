"""The ticket's timeline: every event once, in time order, on the page and in the API, each reader seeing only
what they may (the requester no internal notes, calls, mail or escalations)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from caiwei.desk import flow, outbox, services, timeline
from caiwei.desk.models import Escalation, EscalationRule, MailIntake, TicketAssignment
from caiwei.desk.tests.common import FIELDS

pytestmark = pytest.mark.django_db
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000200a5d4e6"
    "5b0000000049454e44ae426082"
)
EVERYTHING = [
    "opened",
    "assigned",
    "status",
    "paused",
    "requester_reply",
    "attachment",
    "resumed",
    "note",
    "call",
    "mail_in",
    "mail_out",
    "escalation",
    "vendor",
    "reply",
    "survey",
]


@pytest.fixture
def story(users, regions, tmp_path, settings):
    """One ticket through everything that can happen to it, one event of each kind."""
    settings.MEDIA_ROOT = tmp_path
    agent, unit = users["agent"], users["unit"]
    ticket = services.create_ticket(unit, region=regions["152502000"], **FIELDS)
    services.assign(agent, ticket, users["engineer"], "second")
    services.change_status(agent, ticket, flow.RESPONDED)
    services.change_status(agent, ticket, flow.WAITING)
    services.comment(unit, ticket, "凭证号 3201", files=[SimpleUploadedFile("截图.png", PNG)])
    services.comment(agent, ticket, "内部：签章服务日志有报错", internal=True)
    services.log_call(
        agent, region=regions["152502000"], answered=True, caller_number="0479-8000000", ticket=ticket
    )
    MailIntake.objects.create(
        mailbox="desk@example.cn",
        message_id="<m1@example.cn>",
        region=regions["152502000"],
        status=MailIntake.Status.DONE,
        ticket=ticket,
        sender="unit@example.cn",
        subject="补充材料",
    )
    outbox.queue("unit@example.cn", f"[财维] {ticket.number} 已收到", "已收到", ticket)
    rule = EscalationRule.objects.create(name="解决时限 80% 提醒")
    Escalation.objects.create(ticket=ticket, rule=rule, detail="已用 80%")
    services.to_vendor(
        agent, ticket, reference="SJ-9", due=timezone.localdate() + timedelta(days=3), note="提交省级"
    )
    services.comment(agent, ticket, "已修复，请确认")
    services.change_status(agent, ticket, flow.RESOLVED)
    services.rate(unit, ticket, 5, "很及时")
    return ticket


def kinds(events):
    return [e.kind for e in events]


def test_every_event_once_in_order(users, story):
    events = timeline.events(story, users["agent"])
    found = kinds(events)
    assert [k for k in found if k != "status"] == [k for k in EVERYTHING if k != "status"]
    assert found.count("status") == 2  # 新建 → 已响应, and the resolution
    assert found[:4] == ["opened", "assigned", "status", "paused"] and found[-2:] == ["status", "survey"]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assigned = events[1]
    assert assigned.data == {
        "by": "t_agent",
        "from": None,
        "to": "t_engineer",
        "old_tier": "first",
        "new_tier": "second",
    }
    assert "未分派 → " in assigned.text and "一线 → 二线" in assigned.text


def test_each_reader_sees_what_they_may(users, story):
    requester = kinds(timeline.events(story, users["unit"]))
    assert requester == [
        "opened",
        "status",
        "paused",
        "requester_reply",
        "attachment",
        "resumed",
        "reply",
        "status",
        "survey",
    ]
    finance = kinds(timeline.events(story, users["finance"]))
    assert "assigned" in finance and "mail_in" in finance
    assert not {"note", "call", "mail_out", "escalation", "vendor"} & set(finance)


def test_page_and_api_show_the_timeline(users, story, client_for):
    agent = client_for(users["agent"])
    page = agent.get(f"/desk/{story.number}/").content.decode()
    positions = [page.index(f'data-event="{kind}"') for kind in EVERYTHING if kind != "status"]
    assert positions == sorted(positions)
    call = story.calls.get()
    assert f'data-call="{call.pk}"' in page and f"/desk/calls/?call={call.pk}" in page
    detail = agent.get(f"/api/desk/tickets/{story.number}").json()
    assert [e["kind"] for e in detail["timeline"] if e["kind"] != "status"] == [
        k for k in EVERYTHING if k != "status"
    ]
    assert detail["calls"][0]["id"] == call.pk
    (assigned,) = [e for e in detail["timeline"] if e["kind"] == "assigned"]
    assert assigned["data"]["to"] == "t_engineer" and assigned["actor"].startswith("t_agent")
    unit = client_for(users["unit"])
    mine = unit.get(f"/desk/{story.number}/").content.decode()
    for secret in ("签章服务日志", "0479-8000000", "SJ-9", "已用 80%", "unit@example.cn"):
        assert secret not in mine
    api = unit.get(f"/api/desk/tickets/{story.number}").json()
    assert api["calls"] == [] and "note" not in [e["kind"] for e in api["timeline"]]


def test_assignment_is_recorded_once_per_change(users, regions):
    ticket = services.create_ticket(users["agent"], region=regions["152502000"], **FIELDS)
    services.assign(users["agent"], ticket, users["engineer"])
    services.assign(users["agent"], ticket, users["engineer"])  # no change, no record
    services.assign(users["pm"], ticket, None, "vendor")
    rows = list(
        TicketAssignment.objects.filter(ticket=ticket).values_list(
            "by__username", "from_user__username", "to_user__username", "new_tier"
        )
    )
    assert rows == [("t_agent", None, "t_engineer", "first"), ("t_pm", "t_engineer", None, "vendor")]
