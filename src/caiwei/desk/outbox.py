"""发件箱 Outbox: mail is queued in the caller's transaction and sent later, so a dead SMTP server loses nothing.

``send_pending`` runs on the worker's tick each minute and after `caiwei desk fetch-mail`; a failed attempt
records its error and is retried with growing delays, up to ``MAX_ATTEMPTS``, then marked 发送失败.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone

from .models import OutgoingMail, Ticket

MAX_ATTEMPTS = 8
CLAIM = timedelta(minutes=10)  # a sender that dies mid-send leaves the mail to be retried after this
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Refusals of one message; any other error means the server is unreachable and the rest of the batch waits.
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def queue(to: str, subject: str, body: str, ticket: Ticket | None = None) -> OutgoingMail:
    """Queue one mail; call inside the transaction whose outcome it reports."""

    def text(value: str) -> str:  # no lone surrogates (from a bad charset) nor NUL: the database refuses them
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")

    return OutgoingMail.objects.create(
        to=text(to)[:254],
        subject=CONTROL.sub(" ", text(subject)).strip()[:200],
        body=text(body),
        ticket=ticket,
    )


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** (attempts - 1), 120))


def send_pending(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Send the queued mails that are due; returns how many were sent, failed for now, and given up."""
    now = now or timezone.now()
    counts = {"sent": 0, "retry": 0, "failed": 0}
    due = OutgoingMail.objects.filter(status=OutgoingMail.Status.PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return counts
    connection = get_connection(timeout=getattr(settings, "EMAIL_TIMEOUT", None) or 30)
    for pk in ids:
        # Claim by a conditional update: of two senders running at once only one gets the row.
        claimed = OutgoingMail.objects.filter(
            pk=pk, status=OutgoingMail.Status.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + CLAIM)
        if not claimed:
            continue
        item = OutgoingMail.objects.get(pk=pk)
        message = EmailMessage(
            item.subject,
            item.body,
            None,
            [item.to],
            connection=connection,
            headers={"Auto-Submitted": "auto-replied"},
        )
        try:
            message.send()
        except Exception as exc:  # any failure of the transport is recorded and retried, never raised
            item.attempts += 1
            item.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if item.attempts >= MAX_ATTEMPTS:
                item.status = OutgoingMail.Status.FAILED
                counts["failed"] += 1
            else:
                item.next_attempt_at = timezone.now() + backoff(item.attempts)
                counts["retry"] += 1
            item.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
            if not isinstance(exc, MESSAGE_ERRORS):
                break
        else:
            item.attempts += 1
            item.status, item.sent_at = OutgoingMail.Status.SENT, timezone.now()
            item.save(update_fields=["attempts", "status", "sent_at"])
            counts["sent"] += 1
    with contextlib.suppress(Exception):  # closing a broken connection has nothing left to report
        connection.close()
    return counts
