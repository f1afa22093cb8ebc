"""E-mail intake from a folder of .eml files: new tickets, threaded replies, refused attachments with a reply."""

from email.message import EmailMessage
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from caiwei.desk.mail import check_attachment
from caiwei.desk.models import Ticket

pytestmark = pytest.mark.django_db


def eml(subject: str, body: str, attachments=()) -> bytes:
    msg = EmailMessage()
    msg["From"] = "经办人 <clerk@example.invalid>"
    msg["To"] = "desk@example.invalid"
    msg["Subject"] = subject
    msg.set_content(body)
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def fetch(inbox) -> None:
    call_command(
        "desk",
        "fetch-mail",
        "--folder",
        str(inbox),
        "--region",
        "152500000",
        "--agent",
        "t_agent",
        stdout=StringIO(),
    )


def test_folder_intake_threads_and_refuses(users, regions, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CAIWEI_ATTACHMENT_MAX_MB = 1
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "1.eml").write_bytes(
        eml(
            "用款计划无法提交",
            "提示指标余额不足",
            [
                ("截图.png", b"\x89PNG" + b"0" * 100),
                ("工具.pdf.exe", b"MZ"),
                ("大文件.pdf", b"0" * (2 * 1024 * 1024)),
            ],
        )
    )
    fetch(inbox)
    ticket = Ticket.objects.get()
    assert (
        ticket.channel == "email"
        and ticket.title == "用款计划无法提交"
        and ticket.requester_org == "clerk@example.invalid"
    )
    assert [a.name for a in ticket.attachments.all()] == ["截图.png"]
    reply = mail.outbox[-1]
    assert ticket.number in reply.subject and "可执行" in reply.body and "超过上限 1 MB" in reply.body
    assert (inbox / "done" / "1.eml").exists()
    (inbox / "2.eml").write_bytes(eml(f"回复：[{ticket.number}] 用款计划无法提交", "补充：是 11 月的计划"))
    fetch(inbox)
    assert Ticket.objects.count() == 1
    assert ticket.comments.get().body.startswith("[邮件回复] 补充")


@pytest.mark.parametrize(
    ("name", "size", "fragment"),
    [
        ("a.exe", 1, "可执行"),
        ("b.docx.js", 1, "可执行"),
        ("c.mp4", 1, "类型不在允许范围"),
        ("d", 1, "类型不在允许范围"),
    ],
)
def test_attachment_rules(name, size, fragment):
    assert fragment in check_attachment(name, size)


def test_acceptable_attachment():
    assert check_attachment("对账单.xlsx", 1000) is None


def test_upload_on_the_page(users, regions, client_for, tmp_path, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from caiwei.desk import services

    settings.MEDIA_ROOT = tmp_path
    ticket = services.create_ticket(
        users["agent"],
        region=regions["152500000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
    )
    client = client_for(users["agent"])
    client.post(
        f"/desk/{ticket.number}/act/",
        {"action": "comment", "body": "附上截图", "files": [SimpleUploadedFile("截图.png", b"png")]},
    )
    item = ticket.attachments.get()
    assert b"".join(client.get(f"/desk/{ticket.number}/files/{item.pk}/").streaming_content) == b"png"
    bad = client.post(
        f"/desk/{ticket.number}/act/",
        {"action": "comment", "body": "再附一个", "files": [SimpleUploadedFile("x.bat", b"@echo")]},
        follow=True,
    )
    assert "可执行" in bad.content.decode() and ticket.attachments.count() == 1
    assert client_for(users["bank"]).get(f"/desk/{ticket.number}/files/{item.pk}/").status_code == 404
