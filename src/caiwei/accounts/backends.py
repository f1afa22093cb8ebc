"""Password login with lock-out after repeated failures (per login name, across page, admin, API and CLI)."""

from django.contrib.auth.backends import ModelBackend

from . import lockout
from .models import User


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        if not isinstance(username, str) or "\x00" in username or "\x00" in str(password):
            # No account can have such a name (the database would refuse it): the plain answer, nothing stored.
            User().set_password("x")
            self._reason(request, lockout.WRONG)
            return None
        user = User._default_manager.filter(username=username).first()
        if user is None:
            # Same hashing cost and the same counting as a real account, so neither time nor text tells.
            User().set_password(password)
            self._reason(request, lockout.fail_unknown(username))
            return None
        if user.is_locked:
            User().set_password(password)
            self._reason(request, lockout.LOCKED)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            from .twofactor import has_device

            # With a second factor to come, the counter is cleared only once the code is right too.
            if lockout.succeed(user, reset=not has_device(user)):
                return user
            self._reason(request, lockout.LOCKED)
            return None
        self._reason(request, lockout.fail(user))
        return None

    def user_can_authenticate(self, user):
        # A locked account's existing sessions stop working too (get_user asks this).
        return super().user_can_authenticate(user) and not getattr(user, "is_locked", False)

    @staticmethod
    def _reason(request, reason: str) -> None:
        if request is not None:
            request.login_failure_reason = reason
