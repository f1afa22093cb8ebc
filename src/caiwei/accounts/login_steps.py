"""The second step of signing in: between a right password and a session, a pending state in the session.

The session is not logged in until the code is right (or, for an administrator without a device, until one
is enrolled), so nothing behind the login can be reached with the password alone.
"""

import time

from django.contrib.auth import login as auth_login

from .models import User

PENDING = "caiwei_login_pending"
ENROL_KEY = "caiwei_otp_enrol_key"
PENDING_SECONDS = 300


def start(request, user: User, next_url: str) -> None:
    request.session.cycle_key()
    request.session[PENDING] = {
        "uid": user.pk,
        "backend": user.backend,
        "hash": user.get_session_auth_hash(),
        "at": time.time(),
        "next": next_url,
    }


def pending_user(request) -> User | None:
    """The account whose password was right a moment ago in this session, if still valid."""
    data = request.session.get(PENDING)
    if not isinstance(data, dict) or time.time() - data.get("at", 0) > PENDING_SECONDS:
        return None
    user = User.objects.filter(pk=data.get("uid"), is_active=True).first()
    if user is None or user.is_locked or user.get_session_auth_hash() != data.get("hash"):
        return None
    user.backend = data["backend"]
    return user


def clear(request) -> None:
    request.session.pop(PENDING, None)
    request.session.pop(ENROL_KEY, None)


def finish(request, user: User):
    """Log the verified user in (a new session key) and return where to go."""
    from django_otp import login as otp_login

    from .twofactor import confirmed_device

    next_url = request.session.get(PENDING, {}).get("next") or "/"
    clear(request)
    auth_login(request, user, backend=user.backend)
    otp_login(request, confirmed_device(user))
    return next_url
