"""Password login with lock-out after repeated failures (per account, across page, admin and API)."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db.models import F
from django.utils import timezone

from caiwei.audit.log import record
from caiwei.audit.models import AuditAction

from .models import User


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user = User._default_manager.filter(username=username).first()
        if user is None:
            User().set_password(password)  # same cost as a real check, so timing does not reveal names
            self._reason(request, "用户名或密码错误")
            return None
        if user.is_locked:
            self._reason(request, "账号已锁定，请稍后再试或联系系统管理员解锁")
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            if user.failed_logins or user.locked_until:
                User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
                user.failed_logins, user.locked_until = 0, None
            return user
        self._fail(request, user)
        return None

    def _fail(self, request, user: User) -> None:
        User.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
        user.refresh_from_db(fields=["failed_logins"])
        if user.failed_logins >= settings.LOCKOUT_THRESHOLD:
            until = timezone.now() + timedelta(minutes=settings.LOCKOUT_MINUTES)
            User.objects.filter(pk=user.pk).update(locked_until=until, failed_logins=0)
            record(
                AuditAction.LOCKED,
                obj=user,
                actor_name=user.username,
                detail={"until": until.isoformat(), "failures": user.failed_logins},
            )
            self._reason(
                request,
                f"连续 {settings.LOCKOUT_THRESHOLD} 次密码错误，账号已锁定 {settings.LOCKOUT_MINUTES} 分钟",
            )
        else:
            self._reason(request, "用户名或密码错误")

    @staticmethod
    def _reason(request, reason: str) -> None:
        if request is not None:
            request.login_failure_reason = reason
