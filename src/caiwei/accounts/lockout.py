"""The one failure counter of a login name: passwords and second-factor codes on every path count here.

Each failure is counted under a row lock, so parallel attempts neither lose a count nor lock twice. A name
that is no account has a counter of its own (``LoginThrottle``) and answers exactly like one that is.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from caiwei.audit.log import record
from caiwei.audit.models import AuditAction

from .models import LoginThrottle, User, revoke_access

WRONG = "用户名或密码错误"
LOCKED = "账号已锁定，请稍后再试或联系系统管理员解锁"


def just_locked() -> str:
    return (
        f"连续 {settings.LOCKOUT_THRESHOLD} 次密码或动态口令错误，账号已锁定 {settings.LOCKOUT_MINUTES} 分钟"
    )


def _count(failed: int, locked_until, now) -> tuple[int, object, str]:
    """(new count, new lock, message) after one more failure; a lock in force is not counted again."""
    if locked_until is not None and locked_until > now:
        return failed, locked_until, LOCKED
    if locked_until is not None:
        failed = 0  # the previous lock has run out: a fresh series
    failed += 1
    if failed >= settings.LOCKOUT_THRESHOLD:
        return failed, now + timedelta(minutes=settings.LOCKOUT_MINUTES), just_locked()
    return failed, None, WRONG


def fail(user: User, wrong: str = WRONG) -> str:
    """Count one failure of ``user``; returns the message to show (``wrong`` unless the account is locked)."""
    with transaction.atomic():
        row = (
            User.objects.select_for_update()
            .filter(pk=user.pk)
            .values("failed_logins", "locked_until")
            .first()
        )
        if row is None:
            return wrong
        now = timezone.now()
        failed, until, message = _count(row["failed_logins"], row["locked_until"], now)
        if message == LOCKED:
            return LOCKED
        # update(), not save(): the counter is not an audited change; the lock is recorded below.
        User.objects.filter(pk=user.pk).update(failed_logins=failed, locked_until=until)
        user.failed_logins, user.locked_until = failed, until
        if until is None:
            return wrong
        record(
            AuditAction.LOCKED,
            obj=user,
            actor_name=user.username,
            detail={"until": until.isoformat(), "failures": failed},
        )
        revoke_access(user, "连续登录失败锁定")
        return message


def fail_unknown(username: str) -> str:
    """The same counting for a name that is no account, so its answers cannot tell the two apart."""
    username = username[:150]
    now = timezone.now()
    with transaction.atomic():
        # bulk_create and update() send no signals: these rows are bookkeeping, not audited records.
        LoginThrottle.objects.bulk_create([LoginThrottle(username=username)], ignore_conflicts=True)
        row = LoginThrottle.objects.select_for_update().get(username=username)
        failed, until, message = _count(row.failed_logins, row.locked_until, now)
        if message == LOCKED:
            return LOCKED
        LoginThrottle.objects.filter(pk=row.pk).update(
            failed_logins=failed, locked_until=until, updated_at=now
        )
        if until is None:
            return WRONG
        record(
            AuditAction.LOCKED,
            object_type="accounts.user",
            object_repr=username,
            actor_name=username,
            detail={"until": until.isoformat(), "failures": failed, "unknown_account": True},
        )
    if row.failed_logins == 0:
        # Now and then forget names whose last failure is a day old.
        stale = LoginThrottle.objects.filter(updated_at__lt=now - timedelta(days=1))
        stale._raw_delete(stale.db)
    return message


def unknown_is_locked(username: str) -> bool:
    return LoginThrottle.objects.filter(username=username[:150], locked_until__gt=timezone.now()).exists()


def succeed(user: User, *, reset: bool = True) -> bool:
    """A right password (and code): clear the counter unless a lock came in meanwhile; False when locked."""
    now = timezone.now()
    unlocked = User.objects.filter(pk=user.pk).filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
    if not reset:
        return unlocked.exists()
    if unlocked.update(failed_logins=0, locked_until=None) == 0:
        return False
    user.failed_logins, user.locked_until = 0, None
    return True
