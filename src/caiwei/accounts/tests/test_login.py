"""Login, lock-out, password policy, session expiry, API tokens; all of it audited."""

import json

import pytest
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.core.exceptions import ValidationError
from django.test import Client

from caiwei.accounts import services
from caiwei.accounts.models import ApiToken, User
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(client: Client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def test_login_and_logout_are_audited(users):
    client = Client()
    response = login(client, "t_agent", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    event = AuditEvent.objects.filter(action=AuditAction.LOGIN).first()
    assert event.actor == "t_agent" and event.ip == "127.0.0.1" and len(event.request_id) == 32
    client.post("/logout/")
    assert AuditEvent.objects.filter(action=AuditAction.LOGOUT, actor="t_agent").exists()


def test_failed_login_is_audited_and_shown_in_chinese(users):
    response = login(Client(), "t_agent", "wrong")
    assert "用户名或密码错误" in response.content.decode()
    event = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).first()
    assert event.actor == "t_agent" and event.detail["reason"] == "用户名或密码错误"


def test_lockout_after_repeated_failures(users):
    client = Client()
    for _ in range(settings.LOCKOUT_THRESHOLD):
        login(client, "t_agent", "wrong")
    user = User.objects.get(username="t_agent")
    assert user.is_locked
    response = login(client, "t_agent", PASSWORD)  # the right password no longer helps
    assert response.status_code == 200 and "账号已锁定" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.LOCKED, object_id=str(user.pk)).count() == 1
    # The API token endpoint shares the lock.
    api = client.post(
        "/api/auth/token",
        json.dumps({"username": "t_agent", "password": PASSWORD}),
        content_type="application/json",
    )
    assert api.status_code == 401 and "锁定" in api.json()["detail"]
    services.unlock(users["sysadmin"], user)
    assert login(Client(), "t_agent", PASSWORD).status_code == 302


def test_success_resets_failure_count(users):
    client = Client()
    for _ in range(settings.LOCKOUT_THRESHOLD - 1):
        login(client, "t_agent", "wrong")
    assert login(client, "t_agent", PASSWORD).status_code == 302
    assert User.objects.get(username="t_agent").failed_logins == 0


def test_passwords_are_argon2(users):
    assert identify_hasher(users["agent"].password).algorithm == "argon2"


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("Ab1!", "太短"),
        ("abcdefghijkl", "至少 3 类"),
        ("1234567890123", "至少 3 类"),
        ("Password1234", "过于常见"),
    ],
)
def test_password_policy(db, password, fragment):
    with pytest.raises(ValidationError) as info:
        services.create_user(None, username="newbie", password=password)
    assert any(fragment in m for m in info.value.messages), info.value.messages


def test_session_expires_when_idle():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def test_token_from_password_and_revocation(users):
    client = Client()
    response = client.post(
        "/api/auth/token",
        json.dumps({"username": "t_pm", "password": PASSWORD}),
        content_type="application/json",
    )
    key = response.json()["token"]
    me = client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert me.status_code == 200 and me.json()["username"] == "t_pm"
    assert set(me.json()["visible_regions"]) >= {"152500000", "152501000"}
    ApiToken.objects.filter(user=users["pm"]).update(revoked=True)
    assert client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    assert client.get("/api/accounts/me", HTTP_AUTHORIZATION="Bearer cw_forged").status_code == 401
    assert client.get("/api/accounts/me").status_code == 401


def test_token_key_never_stored(users):
    token, key = ApiToken.issue(users["pm"], "script")
    assert key not in token.key_hash and token.prefix == key[:8]
    created = AuditEvent.objects.filter(object_type="accounts.apitoken").first()
    assert created.after["key_hash"] == "******"


def test_password_not_in_audit(users):
    events = AuditEvent.objects.filter(object_type="accounts.user", action=AuditAction.CREATE)
    assert events.exists()
    for event in events:
        assert event.after["password"] == "******"


def test_session_csrf_protects_api_writes(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["secadmin"])
    response = client.put(
        "/api/accounts/users/t_agent/roles", json.dumps({"roles": ["pm"]}), content_type="application/json"
    )
    assert response.status_code in (401, 403)
    assert set(users["agent"].role_grants.values_list("role", flat=True)) == {"agent"}
