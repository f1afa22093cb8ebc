"""E-mail intake 邮件受理: messages become tickets, replies thread by ticket number, bad attachments are refused.

Reads a folder of .eml files or an IMAP mailbox (imaplib); the parsing and the rules are the same for both.
Each message is taken in once per mailbox (by Message-ID, else a SHA-256 of its bytes) in one transaction
with its ticket, attachments and reply; the reply goes to the outbox (``outbox.py``). A message that fails
is quarantined with its reason (a ``MailIntake`` row): the folder's ``quarantine/`` subfolder, or on IMAP
the ``$CaiweiQuarantine`` keyword plus ``\\Seen``. A quarantined message fetched again is retried.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from caiwei.accounts.models import User
from caiwei.audit.context import acting_as
from caiwei.regions.models import Region

from . import outbox, services
from .files import DANGEROUS, allowed_types, check_attachment, max_bytes  # noqa: F401  (re-exported)
from .models import MailIntake, Ticket, TicketAttachment, TicketComment
from .services import visible_tickets

log = logging.getLogger(__name__)

NUMBER = re.compile(r"GD\d{12}")
QUARANTINE_FLAG = "$CaiweiQuarantine"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ADDRESS = re.compile(r"^[^\s@<>\"',;]+@[^\s@<>\"',;]+$")
GB = {"gb2312", "gbk", "x-gbk", "gb_2312-80", "euc-cn", "cp936"}


class Quarantine(Exception):
    """A message that is not taken in; the text (Chinese) is the recorded reason."""


@dataclass
class Mailbox:
    """Where mail is read: its identity for idempotence, its region(s) and the agent that registers it."""

    name: str
    regions: list[Region]
    agent: User

    def __post_init__(self) -> None:
        if len(self.name) > 200:  # a deep folder path: keep it recognisable and unique within the column
            self.name = self.name[:135] + "…#" + hashlib.sha256(self.name.encode()).hexdigest()

    @property
    def home(self) -> Region:
        return self.regions[0]


@dataclass
class Outcome:
    ticket: Ticket | None
    created: bool
    refused: list[str] = field(default_factory=list)
    status: str = "new"  # new, reply, duplicate, quarantined
    reason: str = ""


def max_mail_bytes() -> int:
    return int(getattr(settings, "CAIWEI_MAIL_MAX_MB", 50)) * 1024 * 1024


def clean(text: str, limit: int | None = None) -> str:
    """Text that PostgreSQL and the pages accept: no NUL or control characters, no lone surrogates."""
    text = CONTROL.sub("", text.encode("utf-8", "replace").decode("utf-8"))
    return text[:limit] if limit else text


def message_key(raw: bytes, message: EmailMessage | None) -> str:
    """The Message-ID, or for a message without one (or an unusable one) a digest of its bytes."""
    value = ""
    if message is not None:
        try:
            value = str(message.get("Message-ID", "") or "")
        except Exception:  # a header that does not parse counts as absent
            value = ""
    value = clean(value).strip()
    if value and len(value) <= 250 and " " not in value:
        return value
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _decode(payload: bytes, charset: str | None) -> str:
    candidates = ["gb18030"] if (charset or "").lower() in GB else [charset] if charset else []
    for encoding in [*candidates, "utf-8", "gb18030"]:
        try:
            return payload.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", "replace")


def _text(part) -> str:
    """A text part's content; an unknown or wrong charset falls back to UTF-8, then GB18030."""
    charset = part.get_content_charset()
    if charset and charset.lower() not in GB:
        try:
            return part.get_content()
        except (LookupError, UnicodeError, ValueError, AssertionError):
            pass
    return _decode(part.get_payload(decode=True) or b"", charset)


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _text(part)
    if part.get_content_type() == "text/html":
        text = re.sub(r"<[^>]+>", " ", text)
    return text.strip()


def _header(message: EmailMessage, name: str) -> str:
    try:
        return clean(str(message.get(name, "") or ""))
    except Exception:  # a malformed header is treated as absent
        return ""


def _sender(message: EmailMessage) -> tuple[str, str]:
    pairs = getaddresses([_header(message, "From")])
    name, address = pairs[0] if pairs else ("", "")
    address = address.strip()
    if not ADDRESS.match(address) or len(address) > 254:
        address = ""
    return clean(name).strip(), address


def _region_q(regions: list[Region]) -> Q:
    q = Q(pk__in=[])
    for region in regions:
        q |= Q(region__path__startswith=region.path)
    return q


def entitled(ticket: Ticket, address: str) -> bool:
    """May the sender of ``address`` add to ``ticket``: its requester, or an account that sees the ticket."""
    if not address:
        return False
    if ticket.requester_email and ticket.requester_email.lower() == address.lower():
        return True
    return any(
        visible_tickets(user).filter(pk=ticket.pk).exists()
        for user in User.objects.filter(email__iexact=address, is_active=True)
    )


def reply_target(subject: str, address: str, box: Mailbox) -> tuple[Ticket | None, list[str]]:
    """The ticket a reply belongs to, and the ticket numbers named in the subject that it may not use.

    Only a ticket in the mailbox's region(s), visible to the agent, and from an entitled sender; a
    refused number is not told apart (missing, elsewhere, not yours), so nothing leaks about it.
    """
    numbers = list(dict.fromkeys(NUMBER.findall(subject)))
    scope = Ticket.objects.visible_to(box.agent).filter(_region_q(box.regions))
    for number in numbers:
        ticket = scope.filter(number=number).select_related("requester").first()
        if ticket is not None and entitled(ticket, address):
            return ticket, []
    return None, numbers


def _ingest(raw: bytes, message: EmailMessage, box: Mailbox, intake: MailIntake, saved: list[str]) -> Outcome:
    subject = clean(_header(message, "Subject")).strip() or "（无主题）"
    sender_name, sender = _sender(message)
    body = clean(_body(message)) or subject
    requester = User.objects.filter(email__iexact=sender, is_active=True).first() if sender else None
    ticket, refused_numbers = reply_target(subject, sender, box)
    created = ticket is None
    if ticket is None:
        ticket = services.create_ticket(
            box.agent,
            region=box.home,
            channel=Ticket.Channel.EMAIL,
            system="其他",
            ticket_type="咨询",
            severity="一般",
            title=subject[:120],
            description=body[:10000],
            requester_name=(sender_name or sender or "邮件用户")[:60],
            requester_org=sender[:120],
            requester_email=sender,
            requester=requester,
        )
        comment = None
        if refused_numbers:
            TicketComment.objects.create(
                ticket=ticket,
                body=f"邮件主题引用了工单 {'、'.join(refused_numbers)}，但该工单不在本邮箱受理区划内或发件人"
                f"无权追加，已另行登记为本工单。",
                internal=True,
            )
    else:
        comment = TicketComment.objects.create(
            ticket=ticket, author=requester, body=f"[邮件回复] {body}"[:10000]
        )
    refused = []
    for part in message.iter_attachments():
        name = part.get_filename() or "未命名附件"
        payload = part.get_payload(decode=True) or b""
        reason = check_attachment(name, len(payload), payload)
        if reason:
            refused.append(reason)
            continue
        item = TicketAttachment(
            ticket=ticket,
            comment=comment,
            name=clean(name, 200),
            size=len(payload),
            content_type=clean(part.get_content_type(), 100),
        )
        services.store_file(item, payload, saved)
    intake.status, intake.reason = MailIntake.Status.DONE, ""
    intake.ticket, intake.created_ticket = ticket, created
    intake.sender, intake.subject = sender, subject[:200]
    intake.save()
    if sender and _wants_reply(message):
        outbox.queue(
            sender,
            f"[{ticket.number}] {ticket.title}",
            _reply(ticket, created, refused, refused_numbers),
            ticket,
        )
    return Outcome(ticket, created, refused, "new" if created else "reply")


def _wants_reply(message: EmailMessage) -> bool:
    """No reply to auto-replies and bulk mail, so two robots do not write to each other forever."""
    auto = _header(message, "Auto-Submitted").strip().lower()
    precedence = _header(message, "Precedence").strip().lower()
    return auto in ("", "no") and precedence not in ("bulk", "junk", "list")


def _reply(ticket: Ticket, created: bool, refused: list[str], refused_numbers: list[str]) -> str:
    lines = [
        f"您的问题已登记为工单 {ticket.number}，回复本邮件时请保留主题中的工单号。"
        if created
        else f"您的回复已记入工单 {ticket.number}。"
    ]
    if refused_numbers:
        lines += [
            f"主题中的工单号 {'、'.join(refused_numbers)} 不在本邮箱受理范围内，或您不是该工单的提出人，"
            f"回复未追加到该工单，已另行登记为新工单 {ticket.number}。"
        ]
    if refused:
        lines += (
            ["", "以下附件未被接收："] + [f"- {r}" for r in refused] + ["请改用允许的格式或压缩后重新发送。"]
        )
    return "\n".join(lines)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Quarantine):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "登记工单失败：" + "；".join(exc.messages)
    if isinstance(exc, PermissionDenied):
        return f"受理坐席无权登记：{exc}"
    return f"处理出错（{type(exc).__name__}）：{exc}"


def _check_message(raw: bytes, message: EmailMessage | None) -> None:
    """Refuse what is not a mail one can register and answer: empty, no mail headers, no sender."""
    if not raw.strip():
        raise Quarantine("邮件为空（0 字节或只有空白）")
    if message is None or not any(
        _header(message, h).strip() for h in ("From", "Subject", "Message-ID", "Date")
    ):
        raise Quarantine("不是有效的邮件：没有 From、Subject、Message-ID、Date 等邮件头")
    if not _sender(message)[1]:
        raise Quarantine("邮件没有有效的发件人地址（From），无法登记和回信")


def process(raw: bytes, box: Mailbox, source: str = "") -> Outcome:
    """Take in one message, once: a known Message-ID is skipped, a failure is quarantined with its reason."""
    message = None
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # unparsable bytes still get a key (their digest) and a quarantine row
        log.exception("mail %s does not parse", source)
    key = message_key(raw, message)
    known = MailIntake.objects.filter(mailbox=box.name, message_id=key).first()
    if known is not None and known.status == MailIntake.Status.DONE:
        return Outcome(known.ticket, False, status="duplicate")
    saved: list[str] = []
    try:
        if len(raw) > max_mail_bytes():
            raise Quarantine(
                f"邮件大小 {len(raw) / 1024 / 1024:.1f} MB，超过上限 {max_mail_bytes() // 1024 // 1024} MB"
            )
        _check_message(raw, message)
        with acting_as(box.agent, "mail"), transaction.atomic():
            intake = MailIntake.objects.select_for_update().filter(mailbox=box.name, message_id=key).first()
            if intake is None:
                try:
                    with transaction.atomic():
                        intake = MailIntake.objects.create(
                            mailbox=box.name,
                            message_id=key,
                            region=box.home,
                            status=MailIntake.Status.DONE,
                            source=clean(source, 300),
                        )
                except IntegrityError:  # another run took this message in at the same moment
                    return Outcome(None, False, status="duplicate")
            elif intake.status == MailIntake.Status.DONE:
                return Outcome(intake.ticket, False, status="duplicate")
            intake.source, intake.at = clean(source, 300), timezone.now()
            return _ingest(raw, message, box, intake, saved)
    except Exception as exc:  # any failure quarantines the message; it must never block the mailbox
        for name in saved:
            default_storage.delete(name)
        reason = clean(_reason(exc), 500)
        log.warning("mail %s quarantined: %s", source, reason)
        _quarantine(box, key, message, source, reason)
        return Outcome(None, False, status="quarantined", reason=reason)


def _quarantine(box: Mailbox, key: str, message: EmailMessage | None, source: str, reason: str) -> None:
    fields = {
        "region": box.home,
        "status": MailIntake.Status.QUARANTINED,
        "reason": reason,
        "source": clean(source, 300),
        "subject": clean(_header(message, "Subject"), 200) if message is not None else "",
        "sender": _sender(message)[1] if message is not None else "",
        "at": timezone.now(),
    }
    with transaction.atomic():
        rows = MailIntake.objects.filter(mailbox=box.name, message_id=key).exclude(
            status=MailIntake.Status.DONE
        )
        if (
            not rows.update(**fields)
            and not MailIntake.objects.filter(mailbox=box.name, message_id=key).exists()
        ):
            MailIntake.objects.create(mailbox=box.name, message_id=key, **fields)


def _move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without replacing a file of the same name there."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    path.rename(target)
    return target


def fetch_folder(folder: Path, box: Mailbox) -> list[Outcome]:
    """Take in every .eml in ``folder``; move each to ``done/``, or to ``quarantine/`` when it failed."""
    outcomes = []
    for path in sorted(folder.glob("*.eml")):
        try:
            outcomes.append(_fetch_file(path, folder, box))
        except FileNotFoundError:  # another run took it first
            continue
    return outcomes


def _fetch_file(path: Path, folder: Path, box: Mailbox) -> Outcome:
    if path.is_symlink() or not path.is_file():
        reason = "不是普通文件（符号链接或目录）"
        _quarantine(box, "sha256:" + hashlib.sha256(str(path).encode()).hexdigest(), None, path.name, reason)
        outcome = Outcome(None, False, status="quarantined", reason=reason)
    elif path.stat().st_size > max_mail_bytes():
        outcome = process_oversize(path, box)
    else:
        outcome = process(path.read_bytes(), box, source=path.name)
    _move(path, folder / ("quarantine" if outcome.status == "quarantined" else "done"))
    return outcome


def process_oversize(path: Path, box: Mailbox) -> Outcome:
    """A file too big to read is quarantined by a digest of its name and size, without reading it."""
    reason = (
        f"邮件大小 {path.stat().st_size / 1024 / 1024:.1f} MB，超过上限 {max_mail_bytes() // 1024 // 1024} MB"
    )
    key = "sha256:" + hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()
    _quarantine(box, key, None, path.name, reason)
    return Outcome(None, False, status="quarantined", reason=reason)


def fetch_imap(
    host: str,
    user: str,
    password: str,
    box: Mailbox,
    *,
    mailbox: str = "INBOX",
    port: int = 993,
) -> list[Outcome]:
    """Take in the unseen messages of an IMAP mailbox over verified TLS.

    Each is fetched with BODY.PEEK (not marked seen before it is taken in) and then flagged ``\\Seen``;
    a quarantined one also gets the ``$CaiweiQuarantine`` keyword. Remove ``\\Seen`` to retry it.
    """
    outcomes = []
    context = ssl.create_default_context()  # imaplib's own default does not check the certificate
    with imaplib.IMAP4_SSL(host, port, ssl_context=context) as client:
        client.login(user, password)
        client.select(mailbox)
        _, data = client.uid("SEARCH", "UNSEEN")
        for uid in (data[0] or b"").split():
            label = f"IMAP UID {uid.decode()}"
            _, sized = client.uid("FETCH", uid, "(RFC822.SIZE)")
            size = re.search(rb"RFC822\.SIZE (\d+)", sized[0] if sized and sized[0] else b"")
            if size and int(size.group(1)) > max_mail_bytes():
                reason = f"邮件大小 {int(size.group(1)) / 1024 / 1024:.1f} MB，超过上限 {max_mail_bytes() // 1024 // 1024} MB"
                key = "sha256:" + hashlib.sha256(f"{box.name}:{uid!r}".encode()).hexdigest()
                _quarantine(box, key, None, label, reason)
                outcome = Outcome(None, False, status="quarantined", reason=reason)
            else:
                _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple)), b"")
                outcome = process(raw, box, source=label)
            flags = f"(\\Seen {QUARANTINE_FLAG})" if outcome.status == "quarantined" else "(\\Seen)"
            client.uid("STORE", uid, "+FLAGS", flags)
            outcomes.append(outcome)
    return outcomes
