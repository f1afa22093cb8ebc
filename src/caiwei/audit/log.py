"""Appending to the audit chain and recording what changed."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from .chain import GENESIS, head_mac, row_hash
from .context import Actor, current_actor
from .keys import audit_key
from .models import AuditAction, AuditEvent, AuditHead

MASK = "******"


def jsonable(value: Any) -> Any:
    """Round-trip through JSON so what is hashed is exactly what the database gives back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False))


def _locked_head(key: bytes) -> tuple[AuditHead, str]:
    """The head, locked; and, when it was missing or forged, why (the rows after it may have been cut off).

    A missing head over an empty table is a fresh or flushed database and starts the chain. A missing head over
    rows, or a head whose MAC does not check, is never re-signed silently: the chain continues after whichever
    reaches further, the last row or the head's claim, and the caller appends a 审计链异常 row saying so, which
    ``verify`` reports as a break. Re-signing quietly would let anyone holding the database rewind the head.
    """
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is not None and head.mac == head_mac(key, head.seq, head.hash):
        return head, ""
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    if head is None:
        seq, hash_ = (last["seq"], last["hash"]) if last else (0, GENESIS)
        AuditHead.objects.create(pk=1, seq=seq, hash=hash_, mac=head_mac(key, seq, hash_))
        head = AuditHead.objects.select_for_update().get(pk=1)
        return head, f"链头缺失（库中有 {last['seq']} 行记录）" if last else ""
    reason = f"链头（第 {head.seq} 行）的校验码不符"
    if last and last["seq"] >= head.seq:
        head.seq, head.hash = last["seq"], last["hash"]
    return head, reason


def _append(key: bytes, head: AuditHead, who: Actor, **fields) -> AuditEvent:
    event = AuditEvent(
        seq=head.seq + 1,
        at=timezone.now(),
        actor_id=who.user_id,
        ip=who.ip,
        request_id=who.request_id,
        source=who.source,
        prev_hash=head.hash,
        **fields,
    )
    event.hash = row_hash(key, event.chain_row())
    event.save()
    head.seq, head.hash = event.seq, event.hash
    return event


def record(
    action: str,
    *,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: Any = None,
    after: Any = None,
    detail: dict | None = None,
    actor_name: str | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction (so a rolled-back change leaves none)."""
    actor = current_actor()
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    key = audit_key()
    with transaction.atomic():
        head, anomaly = _locked_head(key)
        if anomaly:
            _append(
                key,
                head,
                actor,
                action=AuditAction.CHAIN_BREAK,
                actor="system:audit",
                object_type="audit.audithead",
                object_id="1",
                object_repr="审计链头",
                before=None,
                after=None,
                detail={"reason": anomaly, "continued_after": head.seq},
            )
        event = _append(
            key,
            head,
            actor,
            action=action,
            actor=(actor_name or actor.username)[:150],
            object_type=object_type,
            object_id=str(object_id)[:64],
            object_repr=object_repr[:200],
            before=jsonable(before),
            after=jsonable(after),
            detail=jsonable(detail or {}),
        )
        head.mac = head_mac(key, head.seq, head.hash)
        head.save(update_fields=["seq", "hash", "mac"])
    return event


def snapshot(instance) -> dict:
    """Field values of a model instance as JSON, secrets masked."""
    secret = set(getattr(instance, "audit_secret_fields", ())) | {"password"}
    data = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if isinstance(value, FieldFile):
            value = value.name  # a stored file is recorded by its name
        data[field.attname] = MASK if (field.attname in secret and value) else value
    return jsonable(data)


def record_export(what: str, count: int, filters: dict | None = None) -> AuditEvent:
    return record(AuditAction.EXPORT, object_type=what, detail={"rows": count, "filters": filters or {}})


def record_denied(what: str, capability: str) -> AuditEvent:
    return record(AuditAction.DENIED, object_type=what, detail={"capability": capability})


def audited_models_excluded() -> set[str]:
    return set(getattr(settings, "CAIWEI_AUDIT_EXCLUDE", ())) | {
        "audit.auditevent",
        "audit.audithead",
        "checks.ruleresult",  # bulk results; the run and every ticket opened from a result are recorded
        "monitor.result",  # probe results, thousands a minute; the items, rules and alerts are recorded
        "monitor.rollup",
        "sessions.session",
        "admin.logentry",
        "contenttypes.contenttype",
        "auth.permission",
        "migrations.migration",
    }
