"""E-mail intake from real .eml files in a folder: new tickets, threaded replies, refused attachments, a reply
through the outbox; each message once (Message-ID), one transaction each, failures quarantined with a reason."""

import shutil
import socket
from datetime import timedelta
from email.message import EmailMessage
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from caiwei.desk import outbox, services
from caiwei.desk.mail import check_attachment
from caiwei.desk.models import MailIntake, OutgoingMail, Ticket

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def eml(
    subject: str, body: str, attachments=(), sender="经办人 <clerk@example.invalid>", msgid=None
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "desk@example.invalid"
    msg["Subject"] = subject
    if msgid:
        msg["Message-ID"] = msgid
    msg.set_content(body)
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def fetch(inbox, *regions: str, agent="t_agent") -> str:
    out = StringIO()
    args = ["desk", "fetch-mail", "--folder", str(inbox), "--agent", agent]
    for code in regions or ("152500000",):
        args += ["--region", code]
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def inbox(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def test_folder_intake_threads_and_refuses(users, regions, inbox, settings):
    settings.CAIWEI_ATTACHMENT_MAX_MB = 1
    (inbox / "1.eml").write_bytes(
        eml(
            "用款计划无法提交",
            "提示指标余额不足",
            [
                ("截图.png", PNG),
                ("工具.pdf.exe", b"MZ"),
                ("大文件.pdf", b"%PDF-" + b"0" * (2 * 1024 * 1024)),
            ],
        )
    )
    fetch(inbox)
    ticket = Ticket.objects.get()
    assert (
        ticket.channel == "email"
        and ticket.title == "用款计划无法提交"
        and ticket.requester_org == ticket.requester_email == "clerk@example.invalid"
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


def test_duplicate_run_makes_no_duplicate_tickets(users, regions, inbox):
    """The same message fetched again (re-delivered, moved back, IMAP flag lost) is skipped by Message-ID."""
    raw = eml("凭证无法签章", "签章服务报错", msgid="<a1@bank.example.invalid>")
    (inbox / "1.eml").write_bytes(raw)
    fetch(inbox)
    (inbox / "1.eml").write_bytes(raw)  # delivered again under the same file name
    (inbox / "copy.eml").write_bytes(raw)
    out = fetch(inbox)
    assert Ticket.objects.count() == 1 and "重复跳过 2 封" in out
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["1.1.eml", "1.eml", "copy.eml"]
    assert OutgoingMail.objects.count() == 1  # one reply, not one per fetch
    # Without a Message-ID the bytes' digest is the key.
    bare = eml("无编号邮件", "正文")
    assert b"Message-ID:" not in bare
    (inbox / "b1.eml").write_bytes(bare)
    (inbox / "b2.eml").write_bytes(bare)
    fetch(inbox)
    assert Ticket.objects.filter(title="无编号邮件").count() == 1
    assert MailIntake.objects.filter(message_id__startswith="sha256:").count() == 1


def test_the_same_message_in_another_mailbox_is_its_own(users, regions, inbox, tmp_path):
    raw = eml("两个邮箱都收到", "抄送", msgid="<cc@example.invalid>")
    other = tmp_path / "county"
    other.mkdir()
    (inbox / "1.eml").write_bytes(raw)
    (other / "1.eml").write_bytes(raw)
    fetch(inbox, "152500000")
    fetch(other, "152502000")
    assert sorted(Ticket.objects.values_list("region__code", flat=True)) == ["152500000", "152502000"]


def test_bogus_charset_does_not_block_the_folder(users, regions, inbox):
    bogus = (
        b"From: =?x-bogus?B?5byg5LiJ?= <clerk@example.invalid>\r\n"
        b"To: desk@example.invalid\r\n"
        b"Subject: =?x-bogus?B?/w==?= \xff\xfe\r\n"
        b"Message-ID: <bogus@example.invalid>\r\n"
        b'Content-Type: text/plain; charset="x-bogus"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"\xe6\x8c\x87\xe6\xa0\x87 \xff\x00 \xe4\xbd\x99\xe9\xa2\x9d\r\n"
    )
    gb = (
        b"From: clerk@example.invalid\r\nTo: desk@example.invalid\r\nSubject: GBK\r\n"
        b'Content-Type: text/plain; charset="gb2312"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        + "指标余额不足（GBK 扩展字：镕）".encode("gbk")
    )
    (inbox / "1-bogus.eml").write_bytes(bogus)
    (inbox / "2-gbk.eml").write_bytes(gb)
    (inbox / "3-good.eml").write_bytes(eml("正常邮件", "正文"))
    fetch(inbox)
    assert list(inbox.glob("*.eml")) == []
    assert Ticket.objects.count() == 3
    assert "指标" in Ticket.objects.get(requester_name="张三").description
    assert "镕" in Ticket.objects.get(title="GBK").description
    fetch(inbox)
    assert Ticket.objects.count() == 3


@pytest.mark.parametrize(
    "name",
    [
        "../../x.pdf",
        "/tmp/x.pdf",
        "..\\..\\x.pdf",
        "C:x.pdf",
        "a\x00b.pdf",
        "CON.pdf",
        "lpt1.txt",
        "x.pdf.",
        "长" * 250 + ".pdf",
    ],
)
def test_traversal_attachment_names_are_refused(users, regions, inbox, tmp_path, name):
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8")
    raw = (
        b"From: clerk@example.invalid\r\nTo: desk@example.invalid\r\nSubject: traversal\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee file\r\n"
        b"--XX\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="' + quoted + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n"
    )
    (inbox / "1.eml").write_bytes(raw)
    (inbox / "2.eml").write_bytes(eml("下一封", "照常处理"))
    fetch(inbox)
    assert list(inbox.glob("*.eml")) == [] and Ticket.objects.count() == 2
    ticket = Ticket.objects.get(title="traversal")
    assert ticket.attachments.count() == 0
    assert not list(tmp_path.rglob("x.pdf")) and not (tmp_path / "media").exists()
    reply = OutgoingMail.objects.get(ticket=ticket)
    assert "未被接收" in reply.body and "\x00" not in reply.body


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smtp_down_ticket_once_and_reply_waits_in_the_outbox(users, regions, inbox, settings, client_for):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    raw = eml("SMTP 不通", "正文", msgid="<smtp@example.invalid>")
    (inbox / "1.eml").write_bytes(raw)
    out = fetch(inbox)
    assert "待重试 1 封" in out
    ticket = Ticket.objects.get()
    item = OutgoingMail.objects.get()
    assert item.status == "pending" and item.attempts == 1 and item.last_error and item.ticket == ticket
    assert (inbox / "done" / "1.eml").exists()
    (inbox / "1.eml").write_bytes(raw)  # the next run sees it again: no second ticket, no second reply
    fetch(inbox)
    assert Ticket.objects.count() == 1 and OutgoingMail.objects.count() == 1
    page = client_for(users["agent"]).get("/desk/mail/").content.decode()
    assert 'data-outgoing="pending"' in page and "ConnectionRefusedError" in page
    # The server comes back: the worker's tick sends it once the back-off has passed.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert outbox.send_pending()["sent"] == 0  # not due yet
    assert outbox.send_pending(now=timezone.now() + timedelta(minutes=5))["sent"] == 1
    item.refresh_from_db()
    assert item.status == "sent" and item.attempts == 2 and mail.outbox[-1].to == ["clerk@example.invalid"]
    assert mail.outbox[-1].extra_headers["Auto-Submitted"] == "auto-replied"


def test_outbox_gives_up_after_retries_with_the_error(users, regions, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    item = outbox.queue("a@example.invalid", "主题\r\nBcc: x@example.invalid", "正文")
    assert "\n" not in item.subject
    now = timezone.now()
    for _ in range(outbox.MAX_ATTEMPTS):
        now += timedelta(hours=3)
        outbox.send_pending(now=now)
    item.refresh_from_db()
    assert (
        item.status == "failed" and item.attempts == outbox.MAX_ATTEMPTS and "Connection" in item.last_error
    )
    from caiwei.desk import jobs

    assert jobs.outbox_tick.__name__ == "outbox_tick"


def test_reply_naming_another_regions_ticket_opens_a_new_one(users, regions, inbox):
    """A mailbox of 锡林浩特 may not append to a ticket of 二连浩特, even from that ticket's requester."""
    bank = users["bank"]
    bank.email = "bank@example.invalid"
    bank.save()
    elsewhere = services.create_ticket(
        bank,
        region=regions["152501000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
    )
    (inbox / "1.eml").write_bytes(
        eml(f"Re: [{elsewhere.number}] t", "追加内容", sender="bank@example.invalid")
    )
    fetch(inbox, "152502000")
    assert elsewhere.comments.count() == 0
    new = Ticket.objects.exclude(pk=elsewhere.pk).get()
    assert new.region.code == "152502000" and new.requester == bank
    assert elsewhere.number in new.comments.get(internal=True).body
    reply = OutgoingMail.objects.get(ticket=new).body
    assert f"{elsewhere.number} 不在本邮箱受理范围内" in reply and f"新工单 {new.number}" in reply
    assert MailIntake.objects.get().ticket == new


def test_reply_from_a_stranger_is_not_appended(users, regions, inbox):
    ticket = services.create_ticket(
        users["unit"],
        region=regions["152502000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
    )
    (inbox / "1.eml").write_bytes(eml(f"Re: [{ticket.number}]", "我来插一句", sender="x@evil.invalid"))
    fetch(inbox, "152502000")
    assert ticket.comments.count() == 0 and Ticket.objects.count() == 2
    # The requester (an account with that address) and a desk worker of the region may append.
    users["unit"].email = "unit@example.invalid"
    users["unit"].save()
    users["engineer"].email = "eng@example.invalid"
    users["engineer"].save()
    (inbox / "2.eml").write_bytes(eml(f"Re: [{ticket.number}]", "补充", sender="unit@example.invalid"))
    (inbox / "3.eml").write_bytes(eml(f"Re: [{ticket.number}]", "已处理", sender="eng@example.invalid"))
    fetch(inbox, "152502000")
    assert ticket.comments.count() == 2 and Ticket.objects.count() == 2


def test_failure_is_quarantined_with_its_reason_and_retried(users, regions, inbox, client_for, monkeypatch):
    """A failure after the ticket was created rolls the ticket back and quarantines the mail, not the folder."""
    raw = eml("附件保存失败", "正文", [("截图.png", PNG)], msgid="<q1@example.invalid>")
    (inbox / "1.eml").write_bytes(raw)
    (inbox / "2.eml").write_bytes(eml("后面的邮件", "照常处理"))

    def broken(item, data, saved):
        raise OSError("磁盘已满")

    monkeypatch.setattr(services, "store_file", broken)
    out = fetch(inbox)
    assert "隔离 1 封" in out and "磁盘已满" in out
    assert [t.title for t in Ticket.objects.all()] == ["后面的邮件"]  # no half-made ticket
    assert (inbox / "quarantine" / "1.eml").exists() and not (inbox / "1.eml").exists()
    row = MailIntake.objects.get(status="quarantined")
    assert row.subject == "附件保存失败" and "处理出错" in row.reason and row.source == "1.eml"
    page = client_for(users["agent"]).get("/desk/mail/").content.decode()
    assert "磁盘已满" in page and "附件保存失败" in page
    assert client_for(users["unit"]).get("/desk/mail/").status_code == 403
    # Fixed and put back: taken in once.
    monkeypatch.undo()
    shutil.move(inbox / "quarantine" / "1.eml", inbox / "1.eml")
    fetch(inbox)
    fetch(inbox)
    assert Ticket.objects.filter(title="附件保存失败").count() == 1
    row.refresh_from_db()
    assert row.status == "done" and row.reason == "" and row.ticket.attachments.count() == 1


def test_oversize_mail_is_quarantined_unread(users, regions, inbox, settings):
    settings.CAIWEI_MAIL_MAX_MB = 1
    (inbox / "big.eml").write_bytes(eml("大邮件", "x" * (2 * 1024 * 1024)))
    fetch(inbox)
    assert not Ticket.objects.exists() and (inbox / "quarantine" / "big.eml").exists()
    assert "超过上限 1 MB" in MailIntake.objects.get().reason


def test_quarantine_page_is_scoped_by_region(users, regions, make_user, client_for):
    MailIntake.objects.create(
        mailbox="m",
        message_id="<x@y>",
        region=regions["152501000"],
        status="quarantined",
        reason="隔离原因甲",
    )
    county = make_user("t_agent_county", "agent", regions=("152522000",))
    assert "隔离原因甲" in client_for(users["agent"]).get("/desk/mail/").content.decode()
    assert "隔离原因甲" not in client_for(county).get("/desk/mail/").content.decode()


def test_agent_must_work_tickets_in_the_mailbox_region(users, regions, inbox, make_user):
    from django.core.management.base import CommandError

    county = make_user("t_agent_county", "agent", regions=("152522000",))
    with pytest.raises(CommandError, match="没有区划"):
        fetch(inbox, "152501000", agent=county.username)
    with pytest.raises(CommandError, match="没有处理工单权限"):
        fetch(inbox, agent="t_finance")


def test_imap_uses_verified_tls_peeks_and_flags(users, regions, monkeypatch):
    """IMAP: certificates are checked, a message is marked seen only after intake, failures get a keyword."""
    from caiwei.desk import mail as intake

    good = eml("IMAP 邮件", "正文", msgid="<imap1@example.invalid>")
    stored: list[tuple] = []
    seen: dict = {}

    class FakeImap:
        def __init__(self, host, port, ssl_context=None):
            seen["context"] = ssl_context

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def login(self, user, password):
            pass

        def select(self, mailbox):
            seen["mailbox"] = mailbox

        def uid(self, command, *args):
            if command == "SEARCH":
                return "OK", [b"7 8"]
            if command == "FETCH" and args[1] == "(RFC822.SIZE)":
                size = b"100" if args[0] == b"7" else b"999999999"  # 8 is too big to fetch
                return "OK", [b"1 (UID %s RFC822.SIZE %s)" % (args[0], size)]
            if command == "FETCH":
                assert args == (b"7", "(BODY.PEEK[])")
                return "OK", [(b"1 (BODY[] {10}", good), b")"]
            stored.append((command, *args))
            return "OK", []

    monkeypatch.setattr(intake.imaplib, "IMAP4_SSL", FakeImap)
    box = intake.Mailbox("imap:test", [regions["152500000"]], users["agent"])
    outcomes = intake.fetch_imap("imap.example.invalid", "u", "p", box)
    assert seen["context"].verify_mode.name == "CERT_REQUIRED" and seen["context"].check_hostname
    assert [o.status for o in outcomes] == ["new", "quarantined"]
    assert stored == [
        ("STORE", b"7", "+FLAGS", "(\\Seen)"),
        ("STORE", b"8", "+FLAGS", "(\\Seen $CaiweiQuarantine)"),
    ]
    assert "超过上限" in MailIntake.objects.get(status="quarantined").reason
    assert Ticket.objects.get().title == "IMAP 邮件"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "邮件为空"),
        (b"\r\n \r\n", "邮件为空"),
        (bytes(range(256)) * 3, "不是有效的邮件"),
        (b"X-Nothing: here\r\n\r\n", "不是有效的邮件"),
        (b"Subject: no sender\r\nMessage-ID: <ns@example.invalid>\r\n\r\nbody\r\n", "发件人"),
        (b"From: not an address\r\nSubject: s\r\n\r\nbody\r\n", "发件人"),
    ],
)
def test_what_is_not_a_mail_is_quarantined(users, regions, inbox, raw, fragment):
    (inbox / "x.eml").write_bytes(raw)
    fetch(inbox)
    assert not Ticket.objects.exists() and (inbox / "quarantine" / "x.eml").exists()
    assert fragment in MailIntake.objects.get().reason
