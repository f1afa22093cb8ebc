"""Appending to the audit chain and recording what changed."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from .chain import GENESIS, row_hash
from .context import current_actor
from .keys import audit_key
from .models import AuditAction, AuditEvent, AuditHead

MASK = "******"


def jsonable(value: Any) -> Any:
    """Round-trip through JSON so what is hashed is exactly what the database gives back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False))


def _locked_head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # A flushed database (tests, a fresh install before migrations' data) starts from its last row.
        last = AuditEvent.objects.order_by("-seq").first()
        head = AuditHead.objects.create(
            pk=1, seq=last.seq if last else 0, hash=last.hash if last else GENESIS
        )
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


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
    with transaction.atomic():
        head = _locked_head()
        event = AuditEvent(
            seq=head.seq + 1,
            at=timezone.now(),
            action=action,
            actor=(actor_name or actor.username)[:150],
            actor_id=actor.user_id,
            ip=actor.ip,
            request_id=actor.request_id,
            source=actor.source,
            object_type=object_type,
            object_id=str(object_id)[:64],
            object_repr=object_repr[:200],
            before=jsonable(before),
            after=jsonable(after),
            detail=jsonable(detail or {}),
            prev_hash=head.hash,
        )
        event.hash = row_hash(audit_key(), event.chain_row())
        event.save()
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
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
        "sessions.session",
        "admin.logentry",
        "contenttypes.contenttype",
        "auth.permission",
        "migrations.migration",
    }
