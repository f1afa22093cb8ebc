"""The lock-out counter: exact under parallel attempts, and silent about which login names exist."""

import json
import threading

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connections
from django.test import Client

from caiwei.accounts.models import LoginThrottle, User
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.conftest import PASSWORD


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="row locks are what is tested: PostgreSQL",
)
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_lock_once_with_an_exact_count(make_user):
    make_user("t_target")
    attempts = settings.LOCKOUT_THRESHOLD * 3  # well over the threshold, all at once
    barrier = threading.Barrier(attempts)
    errors: list[BaseException] = []

    def attempt():
        try:
            barrier.wait()
            authenticate(None, username="t_target", password="wrong-password")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    user = User.objects.get(username="t_target")
    assert user.is_locked
    # Each failure before the lock counted once; those that found the account locked did not count again.
    assert user.failed_logins == settings.LOCKOUT_THRESHOLD
    assert AuditEvent.objects.filter(action=AuditAction.LOCKED, object_id=str(user.pk)).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, actor="t_target").count() == attempts


def _messages(username: str, attempts: int) -> list[str]:
    client = Client()
    out = []
    for _ in range(attempts):
        html = client.post("/login/", {"username": username, "password": "wrong-password"}).content.decode()
        start = html.index('alert-danger py-2">') + len('alert-danger py-2">')
        out.append(html[start : html.index("</div>", start)])
    return out


def _api(username: str, password: str) -> tuple[int, str]:
    response = Client().post(
        "/api/auth/token",
        json.dumps({"username": username, "password": password}),
        content_type="application/json",
    )
    return response.status_code, response.json().get("detail", "")


@pytest.mark.django_db
def test_unknown_name_answers_exactly_like_a_real_one(users):
    """The finding: only a real account ever said "账号已锁定", so the lock told which names exist."""
    attempts = settings.LOCKOUT_THRESHOLD + 2
    known, unknown = _messages("t_agent", attempts), _messages("t_nobody", attempts)
    assert known == unknown
    assert known[-1].startswith("账号已锁定") and "已锁定" in known[settings.LOCKOUT_THRESHOLD - 1]
    assert _api("t_agent", PASSWORD) == _api("t_nobody", PASSWORD)  # locked, both alike
    assert LoginThrottle.objects.get(username="t_nobody").failed_logins == settings.LOCKOUT_THRESHOLD
    assert not User.objects.filter(username="t_nobody").exists()


@pytest.mark.django_db
def test_an_expired_lock_starts_a_fresh_series(users):
    from django.utils import timezone

    for _ in range(settings.LOCKOUT_THRESHOLD):
        authenticate(None, username="t_agent", password="wrong")
    User.objects.filter(username="t_agent").update(
        locked_until=timezone.now() - timezone.timedelta(seconds=1)
    )
    authenticate(None, username="t_agent", password="wrong")
    agent = User.objects.get(username="t_agent")
    assert not agent.is_locked and agent.failed_logins == 1
    assert authenticate(None, username="t_agent", password=PASSWORD) is not None
