"""Every create, update and delete of a record lands in the audit chain with before/after JSON."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from .log import audited_models_excluded, record, snapshot
from .models import AuditAction

_EXCLUDED: set[str] = set()


def _audited(sender) -> bool:
    # Historical models in migrations live in "__fake__"; the audit table may not exist yet while they run.
    return (
        sender.__module__ != "__fake__"
        and sender._meta.label_lower not in _EXCLUDED
        and not sender._meta.auto_created
    )


def _changes(before: dict, after: dict, ignored: set[str]) -> tuple[dict, dict]:
    keys = [k for k in after if before.get(k) != after.get(k) and k not in ignored]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def on_pre_save(sender, instance, raw=False, **kwargs):
    if raw or not _audited(sender) or instance._state.adding or instance.pk is None:
        return
    old = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_before = snapshot(old) if old is not None else None


def on_post_save(sender, instance, created, raw=False, **kwargs):
    if raw or not _audited(sender):
        return
    after = snapshot(instance)
    before = None if created else getattr(instance, "_audit_before", None)
    instance._audit_before = after
    if created or before is None:
        record(AuditAction.CREATE, obj=instance, after=after)
        return
    ignored = set(getattr(instance, "audit_ignore_fields", ()))
    changed_before, changed_after = _changes(before, after, ignored)
    if changed_after:
        record(AuditAction.UPDATE, obj=instance, before=changed_before, after=changed_after)


def on_post_delete(sender, instance, **kwargs):
    if _audited(sender):
        record(AuditAction.DELETE, obj=instance, before=snapshot(instance))


def on_m2m_changed(sender, instance, action, model, pk_set, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"} or not _audited(type(instance)):
        return
    field = next(
        (f.name for f in type(instance)._meta.many_to_many if f.remote_field.through is sender),
        sender.__name__,
    )
    record(
        AuditAction.UPDATE,
        obj=instance,
        detail={"field": field, "change": action.removeprefix("post_"), "ids": sorted(pk_set or [])},
    )


def on_login(sender, request, user, **kwargs):
    record(AuditAction.LOGIN, obj=user, actor_name=user.get_username())


def on_logout(sender, request, user, **kwargs):
    if user is not None:
        record(AuditAction.LOGOUT, obj=user, actor_name=user.get_username())


def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    record(
        AuditAction.LOGIN_FAILED,
        object_type="accounts.user",
        object_repr=username,
        actor_name=username or "anonymous",
        detail={"reason": getattr(request, "login_failure_reason", "用户名或密码错误") if request else ""},
    )


def connect() -> None:
    _EXCLUDED.update(audited_models_excluded())
    pre_save.connect(on_pre_save, dispatch_uid="caiwei.audit.pre_save")
    post_save.connect(on_post_save, dispatch_uid="caiwei.audit.post_save")
    post_delete.connect(on_post_delete, dispatch_uid="caiwei.audit.post_delete")
    m2m_changed.connect(on_m2m_changed, dispatch_uid="caiwei.audit.m2m")
    user_logged_in.connect(on_login, dispatch_uid="caiwei.audit.login")
    user_logged_out.connect(on_logout, dispatch_uid="caiwei.audit.logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="caiwei.audit.login_failed")
