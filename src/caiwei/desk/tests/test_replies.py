"""Requesters answer on their own tickets (page and API): a reply to 等待用户 resumes the ticket and its clocks, files
go through the content checks, nobody else's ticket is reachable, internal notes stay internal, and the finance
bureau stays read-only on tickets it did not raise."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from caiwei.bizcalendar.engine import add_business_time, business_time_between, key_periods_at
from caiwei.desk import flow, services, sla
from caiwei.desk.models import Notification, TicketAttachment, TicketChange, TicketComment
from caiwei.desk.tests.common import FIELDS

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
UNIT_REGION = "152502000"
# A real one-page PDF and a real 1×1 PNG: what a requester attaches.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000200a5d4e6"
    "5b0000000049454e44ae426082"
)
# A Windows executable renamed to look like a scan.
MZ = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
    + b"\x00" * 64
    + b"This program cannot be run in DOS mode"
)


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


class Clock:
    def __init__(self, monkeypatch):
        self.now = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def raised_by_unit(users, regions, **extra):
    return services.create_ticket(users["unit"], region=regions[UNIT_REGION], **{**FIELDS, **extra})


def waiting(users, ticket):
    services.change_status(users["agent"], ticket, flow.RESPONDED)
    services.change_status(users["agent"], ticket, flow.WAITING, "请提供凭证号与报错截图")
    ticket.refresh_from_db()
    assert ticket.status == flow.WAITING and ticket.due_resolution is None  # the clock stands still
    return ticket


def resolution_rule(ticket):
    """The resolution target the ticket's policy sets for it, and the calendar it runs on."""
    specs = services.calendars()
    periods = {p.code for p in key_periods_at(specs["workday"], ticket.opened_at)}
    target = ticket.policy.engine().targets(ticket.severity, ticket.ticket_type, periods)["resolution"]
    spec = specs[target.calendar]
    return spec, sla.target_duration(target, spec, ticket.opened_at)


def test_unit_reply_on_the_page_resumes_and_the_pause_is_not_counted(users, regions, client_for, clock):
    opened = datetime(2026, 11, 24, 9, 0, tzinfo=SH)  # a Tuesday, a plain workday
    clock.now = opened
    ticket = raised_by_unit(users, regions, opened_at=opened)
    spec, amount = resolution_rule(ticket)
    due_without_pause = add_business_time(spec, opened, amount)
    assert ticket.due_resolution == due_without_pause
    services.assign(users["agent"], ticket, users["engineer"])
    clock.now = opened + timedelta(minutes=10)
    services.change_status(users["agent"], ticket, flow.RESPONDED)
    paused_at = clock.now = opened + timedelta(minutes=20)
    services.change_status(users["agent"], ticket, flow.WAITING, "请提供凭证号")
    ticket.refresh_from_db()
    assert ticket.due_resolution is None
    resumed_at = clock.now = datetime(2026, 11, 24, 15, 30, tzinfo=SH)

    unit = client_for(users["unit"])
    page = unit.get(f"/desk/{ticket.number}/").content.decode()
    assert "data-reply-form" in page and "等待您的答复" in page
    response = unit.post(f"/desk/{ticket.number}/reply/", {"body": "凭证号 3201，截图见附件"}, follow=True)
    assert "已回复，工单已恢复处理，服务时限恢复计时" in response.content.decode()

    ticket.refresh_from_db()
    assert ticket.status == flow.IN_PROGRESS
    last = TicketChange.objects.filter(ticket=ticket).last()
    assert (last.old_status, last.new_status, last.by, last.at) == (
        flow.WAITING,
        flow.IN_PROGRESS,
        users["unit"],
        resumed_at,
    )
    paused = business_time_between(spec, paused_at, resumed_at)
    assert paused > timedelta(0)
    # The due instant moved by exactly the business time the ticket waited, and no more.
    assert business_time_between(spec, due_without_pause, ticket.due_resolution) == paused
    assert business_time_between(spec, opened, ticket.due_resolution) - paused == amount
    reply = TicketComment.objects.get(ticket=ticket, author=users["unit"])
    assert not reply.internal and reply.body == "凭证号 3201，截图见附件"
    # The engineer holding the ticket hears of the answer.
    assert Notification.objects.filter(
        user=users["engineer"], ticket=ticket, text__contains="提出人回复"
    ).exists()
    # A second reply while 处理中 changes nothing about the status.
    unit.post(f"/desk/{ticket.number}/reply/", {"body": "补充：昨天也出现过"})
    ticket.refresh_from_db()
    assert ticket.status == flow.IN_PROGRESS and ticket.changes.count() == 3


def test_reply_with_files_on_the_page_and_a_disguised_executable(users, regions, client_for, media):
    ticket = waiting(users, raised_by_unit(users, regions))
    unit = client_for(users["unit"])
    response = unit.post(
        f"/desk/{ticket.number}/reply/",
        {
            "body": "附回单与截图",
            "files": [SimpleUploadedFile("回单.pdf", PDF), SimpleUploadedFile("截图.png", PNG)],
        },
    )
    assert response.status_code == 302
    note = TicketComment.objects.get(ticket=ticket, author=users["unit"])
    stored = {a.name: a for a in note.attachments.all()}
    assert set(stored) == {"回单.pdf", "截图.png"}
    assert stored["回单.pdf"].file.read() == PDF and stored["回单.pdf"].size == len(PDF)
    download = unit.get(f"/desk/{ticket.number}/files/{stored['截图.png'].pk}/")
    assert b"".join(download.streaming_content) == PNG
    ticket.refresh_from_db()
    assert ticket.status == flow.IN_PROGRESS

    services.change_status(users["agent"], ticket, flow.WAITING)
    refused = unit.post(
        f"/desk/{ticket.number}/reply/",
        {"body": "发票扫描件", "files": [SimpleUploadedFile("发票.pdf", MZ)]},
        follow=True,
    )
    page = refused.content.decode()
    assert "未保存任何附件" in page and "发票.pdf" in page and "可执行程序" in page
    assert TicketComment.objects.filter(ticket=ticket, author=users["unit"]).count() == 1  # nothing saved
    assert TicketAttachment.objects.filter(ticket=ticket).count() == 2
    ticket.refresh_from_db()
    assert ticket.status == flow.WAITING  # a refused reply does not resume the ticket


def test_only_the_requester_replies(users, regions, make_user, client_for):
    ticket = waiting(users, raised_by_unit(users, regions))
    other_unit = make_user("t_unit_other", "unit_user", regions=(UNIT_REGION,))
    for user in (other_unit, users["bank"]):
        client = client_for(user)
        assert client.get(f"/desk/{ticket.number}/").status_code == 404
        assert client.post(f"/desk/{ticket.number}/reply/", {"body": "冒充"}).status_code == 404
        api = client.post(f"/api/desk/tickets/{ticket.number}/replies", {"body": "冒充"})
        assert api.status_code == 404
        assert client.post(f"/api/desk/tickets/{ticket.number}/comments", {"body": "冒充"}).status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == flow.WAITING and not TicketComment.objects.filter(body="冒充").exists()
    # The requester themself is answered, on the page and by the API.
    own = client_for(users["unit"])
    assert own.post(f"/desk/{ticket.number}/reply/", {"body": "本人答复"}).status_code == 302
    assert own.post(f"/api/desk/tickets/{ticket.number}/replies", {"body": "本人再答"}).status_code == 201
    ticket.refresh_from_db()
    assert ticket.status == flow.IN_PROGRESS


def test_requester_writes_no_internal_notes_and_sees_none(users, regions, client_for, media):
    ticket = waiting(users, raised_by_unit(users, regions))
    services.comment(users["agent"], ticket, "内部：疑似签章服务故障", internal=True)
    unit = client_for(users["unit"])
    unit.post(f"/desk/{ticket.number}/reply/", {"body": "我的答复", "internal": "1"})
    assert TicketComment.objects.get(author=users["unit"]).internal is False
    api = unit.post(
        f"/api/desk/tickets/{ticket.number}/comments",
        '{"body": "想写内部备注", "internal": true}',
        content_type="application/json",
    )
    assert api.status_code == 403
    assert unit.post(f"/desk/{ticket.number}/act/", {"action": "comment", "body": "x"}).status_code == 403
    page = unit.get(f"/desk/{ticket.number}/").content.decode()
    detail = json.dumps(unit.get(f"/api/desk/tickets/{ticket.number}").json(), ensure_ascii=False)
    comments = json.dumps(unit.get(f"/api/desk/tickets/{ticket.number}/comments").json(), ensure_ascii=False)
    for answer in (page, detail, comments):
        assert "疑似签章" not in answer and "想写内部备注" not in answer
    assert "我的答复" in page and "我的答复" in detail


def test_finance_is_read_only_on_tickets_it_did_not_raise(users, regions, client_for):
    ticket = waiting(users, raised_by_unit(users, regions))
    for who in ("finance", "approver"):
        client = client_for(users[who])
        page = client.get(f"/desk/{ticket.number}/")
        assert page.status_code == 200 and "data-reply-form" not in page.content.decode()
        assert client.post(f"/desk/{ticket.number}/reply/", {"body": "代答"}).status_code == 404
        assert client.post(f"/api/desk/tickets/{ticket.number}/replies", {"body": "代答"}).status_code == 404
        comment = client.post(
            f"/api/desk/tickets/{ticket.number}/comments", '{"body": "代答"}', content_type="application/json"
        )
        assert comment.status_code == 403 and "只能回复自己提出的工单" in comment.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.status == flow.WAITING and not TicketComment.objects.filter(body="代答").exists()
    # A ticket the finance section raised itself is theirs to answer.
    own = services.create_ticket(users["finance"], region=regions["152500000"], **FIELDS)
    assert own.requester == users["finance"]
    own = waiting(users, own)
    client = client_for(users["finance"])
    assert "data-reply-form" in client.get(f"/desk/{own.number}/").content.decode()
    client.post(f"/desk/{own.number}/reply/", {"body": "已补充材料"})
    own.refresh_from_db()
    assert own.status == flow.IN_PROGRESS


def test_no_reply_once_closed(users, regions, client_for):
    ticket = raised_by_unit(users, regions)
    services.change_status(users["agent"], ticket, flow.RESOLVED)
    unit = client_for(users["unit"])
    assert "data-reply-form" not in unit.get(f"/desk/{ticket.number}/").content.decode()
    response = unit.post(f"/desk/{ticket.number}/reply/", {"body": "还有问题"}, follow=True)
    assert "不能再回复" in response.content.decode()
    assert not TicketComment.objects.filter(author=users["unit"]).exists()


def test_api_reply_resumes_with_files_and_refuses_executables(users, regions, client_for, clock, media):
    opened = datetime(2026, 11, 24, 9, 0, tzinfo=SH)
    clock.now = opened
    ticket = raised_by_unit(users, regions, opened_at=opened)
    spec, amount = resolution_rule(ticket)
    clock.now = opened + timedelta(minutes=30)
    services.change_status(users["agent"], ticket, flow.WAITING, "请提供截图")
    paused_at = clock.now
    clock.now = resumed_at = datetime(2026, 11, 25, 10, 0, tzinfo=SH)  # the next morning
    unit = client_for(users["unit"])
    url = f"/api/desk/tickets/{ticket.number}/replies"

    bad = unit.post(url, {"body": "发票", "files": [SimpleUploadedFile("发票.pdf", MZ)]})
    assert bad.status_code == 400 and "可执行程序" in bad.json()["detail"]
    assert "发票.pdf" in bad.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.status == flow.WAITING and not TicketComment.objects.filter(author=users["unit"]).exists()
    assert unit.post(url, {"body": ""}).status_code in (400, 422)

    ok = unit.post(url, {"body": "截图见附件", "files": [SimpleUploadedFile("截图.png", PNG)]})
    assert ok.status_code == 201, ok.content
    answer = ok.json()
    assert answer["status"] == flow.IN_PROGRESS and [a["name"] for a in answer["attachments"]] == ["截图.png"]
    assert TicketAttachment.objects.get(pk=answer["attachments"][0]["id"]).file.read() == PNG
    ticket.refresh_from_db()
    paused = business_time_between(spec, paused_at, resumed_at)
    assert paused > timedelta(0)
    assert business_time_between(spec, opened, ticket.due_resolution) - paused == amount
    # Without files too.
    assert unit.post(url, {"body": "再补充一句"}).status_code == 201
    detail = unit.get(f"/api/desk/tickets/{ticket.number}").json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.count("requester_reply") == 2 and "paused" in kinds and "resumed" in kinds
