"""E-mail intake 邮件受理: messages become tickets, replies thread by ticket number, bad attachments are refused.

Reads a folder of .eml files or an IMAP mailbox (imaplib); the parsing and the rules are the same for both.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path, PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import send_mail

from caiwei.accounts.models import User
from caiwei.audit.context import acting_as
from caiwei.regions.models import Region

from . import services
from .models import Ticket, TicketAttachment, TicketComment

NUMBER = re.compile(r"GD\d{12}")
DANGEROUS = {
    "exe",
    "bat",
    "cmd",
    "com",
    "scr",
    "pif",
    "js",
    "jse",
    "vbs",
    "vbe",
    "wsf",
    "ps1",
    "msi",
    "jar",
    "dll",
    "sh",
    "hta",
    "lnk",
    "reg",
    "cpl",
}


def allowed_types() -> set[str]:
    return set(
        getattr(
            settings, "CAIWEI_ATTACHMENT_TYPES", "pdf png jpg jpeg gif txt csv xls xlsx doc docx ofd zip rar"
        ).split()
    )


def max_bytes() -> int:
    return int(getattr(settings, "CAIWEI_ATTACHMENT_MAX_MB", 10)) * 1024 * 1024


def check_attachment(name: str, size: int) -> str | None:
    """Why an attachment is refused (in Chinese), or None when it is acceptable."""
    suffixes = [s.lower().lstrip(".") for s in PurePath(name).suffixes]
    if any(s in DANGEROUS for s in suffixes):
        return f"附件“{name}”是可执行或脚本类文件，出于安全原因不予接收"
    if not suffixes or suffixes[-1] not in allowed_types():
        return f"附件“{name}”的类型不在允许范围（{'、'.join(sorted(allowed_types()))}）"
    if size > max_bytes():
        return f"附件“{name}”大小 {size / 1024 / 1024:.1f} MB，超过上限 {max_bytes() // 1024 // 1024} MB"
    return None


@dataclass
class Outcome:
    ticket: Ticket
    created: bool
    refused: list[str] = field(default_factory=list)


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = part.get_content()
    if part.get_content_type() == "text/html":
        text = re.sub(r"<[^>]+>", " ", text)
    return text.strip()


def ingest(raw: bytes, *, region: Region, agent: User) -> Outcome:
    """One message: a reply to a known ticket number becomes a comment, anything else a new ticket."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(message.get("Subject", "")).strip() or "（无主题）"
    sender_name, sender = parseaddr(str(message.get("From", "")))
    body = _body(message) or subject
    requester = User.objects.filter(email__iexact=sender, is_active=True).first() if sender else None
    match = NUMBER.search(subject)
    ticket = Ticket.objects.filter(number=match.group(0)).first() if match else None
    created = ticket is None
    with acting_as(agent, "mail"):
        if ticket is None:
            ticket = services.create_ticket(
                agent,
                region=region,
                channel=Ticket.Channel.EMAIL,
                system="其他",
                ticket_type="咨询",
                severity="一般",
                title=subject[:120],
                description=body[:10000],
                requester_name=(sender_name or sender or "邮件用户")[:60],
                requester_org=sender[:120],
                requester=requester,
            )
        else:
            TicketComment.objects.create(ticket=ticket, author=requester, body=f"[邮件回复] {body}"[:10000])
        refused = []
        for part in message.iter_attachments():
            name = part.get_filename() or "未命名附件"
            payload = part.get_payload(decode=True) or b""
            reason = check_attachment(name, len(payload))
            if reason:
                refused.append(reason)
                continue
            attachment = TicketAttachment(
                ticket=ticket, name=name[:200], size=len(payload), content_type=part.get_content_type()
            )
            attachment.file.save(PurePath(name).name, ContentFile(payload), save=True)
    if sender:
        _reply(sender, ticket, created, refused)
    return Outcome(ticket, created, refused)


def _reply(to: str, ticket: Ticket, created: bool, refused: list[str]) -> None:
    lines = [
        f"您的问题已登记为工单 {ticket.number}，回复本邮件时请保留主题中的工单号。"
        if created
        else f"您的回复已记入工单 {ticket.number}。"
    ]
    if refused:
        lines += (
            ["", "以下附件未被接收："] + [f"- {r}" for r in refused] + ["请改用允许的格式或压缩后重新发送。"]
        )
    send_mail(f"[{ticket.number}] {ticket.title}", "\n".join(lines), None, [to])


def fetch_folder(folder: Path, *, region: Region, agent: User) -> list[Outcome]:
    """Ingest every .eml in ``folder`` and move it to ``folder/done`` (a failed one to ``folder/failed``)."""
    outcomes = []
    for path in sorted(folder.glob("*.eml")):
        target = folder / "done"
        try:
            outcomes.append(ingest(path.read_bytes(), region=region, agent=agent))
        except (ValidationError, ValueError):
            target = folder / "failed"
        target.mkdir(exist_ok=True)
        path.rename(target / path.name)
    return outcomes


def fetch_imap(
    host: str,
    user: str,
    password: str,
    *,
    region: Region,
    agent: User,
    mailbox: str = "INBOX",
    port: int = 993,
) -> list[Outcome]:
    """Ingest the unseen messages of an IMAP mailbox over TLS and mark them seen."""
    outcomes = []
    with imaplib.IMAP4_SSL(host, port) as client:
        client.login(user, password)
        client.select(mailbox)
        _, data = client.search(None, "UNSEEN")
        for number in data[0].split():
            _, parts = client.fetch(number, "(RFC822)")
            outcomes.append(ingest(parts[0][1], region=region, agent=agent))
            client.store(number, "+FLAGS", "\\Seen")
    return outcomes
