"""Two-factor sign-in (TOTP): required of the three administrators, open to everyone, on the page, the API
and the command; wrong codes count toward the same lock-out as wrong passwords."""

import base64
import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from caiwei.accounts import services
from caiwei.accounts.models import User
from caiwei.audit.models import AuditEvent
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def code_for_secret(secret: str) -> str:
    key = base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8))
    return f"{TOTP(key).token():06d}"


def password_step(client: Client, username: str, next_url: str = ""):
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post("/login/", data)


def signed_in(client: Client) -> bool:
    return client.get("/accounts/me/").status_code == 200


@pytest.mark.parametrize("role", ["sysadmin", "secadmin", "auditor"])
def test_administrator_enrols_before_reaching_any_page(users, role):
    client = Client()
    response = password_step(client, users[role].username, "/audit/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/enrol/"
    # With the password alone nothing behind the login answers.
    assert client.get("/").status_code == 302
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/accounts/me").status_code == 401
    assert not signed_in(client)
    page = client.get("/accounts/login/enrol/")
    html = page.content.decode()
    assert page.status_code == 200 and "绑定动态口令" in html
    secret = re.search(r"data-otp-secret>([A-Z2-7 ]+)<", html).group(1)
    assert 'src="data:image/svg+xml;base64,' in html
    # The QR code and the page keep to the CSP: no inline script, no inline style.
    assert "<script>" not in html and " style=" not in html
    assert "unsafe-inline" not in page["Content-Security-Policy"]
    svg = base64.b64decode(
        re.search(r'data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html).group(1)
    ).decode()
    assert "<svg" in svg and "script" not in svg and "style=" not in svg
    wrong = client.post("/accounts/login/enrol/", {"code": "000000"})
    assert "动态口令错误" in wrong.content.decode() and not signed_in(client)
    done = client.post("/accounts/login/enrol/", {"code": code_for_secret(secret)})
    assert done.status_code == 302 and done["Location"] == "/audit/"
    assert signed_in(client)
    device = TOTPDevice.objects.get(user=users[role])
    assert device.confirmed
    created = AuditEvent.objects.get(object_type="otp_totp.totpdevice", action="create")
    assert created.after["key"] == "******"


def test_device_holder_enters_a_code_and_a_code_is_used_once(users, otp_for):
    client = Client()
    code = otp_for(users["sysadmin"])
    response = password_step(client, "t_sysadmin")
    assert response["Location"] == "/accounts/login/code/"
    assert not signed_in(client)
    assert client.post("/accounts/login/code/", {"code": code}).status_code == 302
    assert signed_in(client)
    # The same code a second time, elsewhere, does not pass.
    again = Client()
    password_step(again, "t_sysadmin")
    assert "动态口令错误" in again.post("/accounts/login/code/", {"code": code}).content.decode()
    assert not signed_in(again)


def test_code_step_needs_the_password_step_first(users, otp_for):
    client = Client()
    response = client.post("/accounts/login/code/", {"code": otp_for(users["sysadmin"])})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not signed_in(client)


def test_wrong_codes_count_toward_the_lockout(users, otp_for, settings):
    # django-otp's own back-off aside: the shared counter is what is tested.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    otp_for(users["agent"])
    client = Client()
    password_step(client, "t_agent")
    for _ in range(settings.LOCKOUT_THRESHOLD - 1):
        assert "动态口令错误" in client.post("/accounts/login/code/", {"code": "123456"}).content.decode()
    last = client.post("/accounts/login/code/", {"code": "123456"}, follow=True)
    assert "账号已锁定" in last.content.decode()
    agent = User.objects.get(username="t_agent")
    assert agent.is_locked
    # The right password no longer helps, nor does a right code.
    assert "账号已锁定" in password_step(Client(), "t_agent").content.decode()


def test_a_right_password_does_not_reset_the_count_before_the_code(users, otp_for, settings):
    """Otherwise password, four wrong codes, password again ... would try codes without end."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    otp_for(users["agent"])
    for _ in range(3):
        client = Client()
        password_step(client, "t_agent")
        client.post("/accounts/login/code/", {"code": "123456"})
        client.post("/accounts/login/code/", {"code": "654321"})
    agent = User.objects.get(username="t_agent")
    assert agent.is_locked


def test_anyone_enrols_in_the_profile_and_may_stop(users, client_for, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    agent = users["agent"]
    client = client_for(agent)
    assert "未绑定" in client.get("/accounts/me/").content.decode()
    html = client.get("/accounts/me/otp/").content.decode()
    secret = re.search(r"data-otp-secret>([A-Z2-7 ]+)<", html).group(1)
    assert client.post("/accounts/me/otp/", {"code": code_for_secret(secret)}).status_code == 302
    assert TOTPDevice.objects.filter(user=agent, confirmed=True).exists()
    # From now on the login asks for the code.
    response = password_step(Client(), "t_agent")
    assert response["Location"] == "/accounts/login/code/"
    # Stopping takes a current code.
    assert "动态口令错误" in client.post("/accounts/me/otp/", {"code": "000000"}).content.decode()
    device = TOTPDevice.objects.get(user=agent)
    device.last_t = -1
    device.save()
    code = f"{TOTP(device.bin_key).token():06d}"
    assert client.post("/accounts/me/otp/", {"code": code}).status_code == 302
    assert not TOTPDevice.objects.filter(user=agent).exists()


def test_administrators_cannot_unbind_their_own_device(users, client_for, otp_for):
    code = otp_for(users["auditor"])
    client = client_for(users["auditor"])
    assert client.post("/accounts/me/otp/", {"code": code}).status_code == 403
    assert TOTPDevice.objects.filter(user=users["auditor"]).exists()
    with pytest.raises(Exception, match="自己"):
        services.reset_otp(users["sysadmin"], users["sysadmin"])


def test_api_token_needs_the_code(users, otp_for):
    def token(username, **extra):
        body = {"username": username, "password": PASSWORD} | extra
        return Client().post("/api/auth/token", json.dumps(body), content_type="application/json")

    # An administrator without a device enrols on the page first.
    response = token("t_auditor")
    assert response.status_code == 401 and "绑定动态口令" in response.json()["detail"]
    code = otp_for(users["auditor"])
    missing = token("t_auditor")
    assert missing.status_code == 401 and "otp" in missing.json()["detail"]
    assert token("t_auditor", otp="000000").status_code == 401
    code = otp_for(users["auditor"])  # past django-otp's short back-off after the wrong one
    ok = token("t_auditor", otp=code)
    assert ok.status_code == 200 and ok.json()["token"].startswith("cw_")
    # Accounts without a device are as before.
    assert token("t_agent").status_code == 200


def test_cli_needs_the_code(users, monkeypatch, otp_for):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.delenv("CAIWEI_OTP", raising=False)
    with pytest.raises(CommandError, match="绑定动态口令"):
        call_command("accounts", "list", "--actor", "t_sysadmin", stdout=StringIO())
    otp_for(users["sysadmin"])
    monkeypatch.setenv("CAIWEI_OTP", "000000")
    with pytest.raises(CommandError, match="动态口令错误"):
        call_command("accounts", "list", "--actor", "t_sysadmin", stdout=StringIO())
    monkeypatch.setenv("CAIWEI_OTP", otp_for(users["sysadmin"]))  # past the back-off after the wrong one
    out = StringIO()
    call_command("accounts", "list", "--actor", "t_sysadmin", stdout=out)
    assert "t_auditor" in out.getvalue()
    # Without the variable the command asks, like for the password.
    monkeypatch.delenv("CAIWEI_OTP")
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or otp_for(users["sysadmin"]))
    call_command("accounts", "list", "--actor", "t_sysadmin", stdout=StringIO())
    assert any("动态口令" in p for p in asked)


def test_lost_device_of_an_administrator_is_reset_by_two(users, make_user, otp_for):
    otp_for(users["auditor"])
    req = services.reset_otp(users["sysadmin"], users["auditor"])
    assert TOTPDevice.objects.filter(user=users["auditor"]).exists()
    services.approve(users["secadmin"], req)
    assert not TOTPDevice.objects.filter(user=users["auditor"]).exists()
    # The next sign-in enrols again.
    assert password_step(Client(), "t_auditor")["Location"] == "/accounts/login/enrol/"


def test_login_page_and_demo_explain_enrolment(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert "动态口令" in Client().get("/login/").content.decode()
    out = StringIO()
    call_command("accounts", "demo", stdout=out)
    assert "首次登录" in out.getvalue() and "动态口令" in out.getvalue()


def test_threshold_is_shared(users, otp_for, settings):
    """Wrong passwords and wrong codes add up."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    otp_for(users["agent"])
    for _ in range(settings.LOCKOUT_THRESHOLD - 1):
        Client().post("/login/", {"username": "t_agent", "password": "wrong"})
    client = Client()
    password_step(client, "t_agent")
    client.post("/accounts/login/code/", {"code": "123456"})
    assert User.objects.get(username="t_agent").is_locked
    assert settings.LOCKOUT_THRESHOLD > 1
