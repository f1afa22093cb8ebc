"""三员分设: each of the three administrators cannot do the other two's jobs on any path, and no account holds two."""

import json
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from caiwei.accounts import services
from caiwei.accounts.models import User, UserRole
from caiwei.accounts.roles import Role
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db


# --- no account holds two of the three ---------------------------------------------------------------


def test_database_refuses_two_admin_roles(users):
    with pytest.raises(IntegrityError), transaction.atomic():
        UserRole.objects.create(user=users["sysadmin"], role=Role.AUDITOR)


def test_service_refuses_two_admin_roles(users):
    with pytest.raises(ValidationError, match="三员分设"):
        services.set_roles(users["secadmin"], users["agent"], [Role.SYSTEM_ADMIN, Role.AUDITOR])
    assert users["agent"].role_grants.count() == 1  # nothing half written


def test_admin_role_swap_is_allowed(users, make_user):
    make_user("t_sysadmin2", Role.SYSTEM_ADMIN)  # the swap must not leave the system administrators empty
    pending = services.set_roles(users["secadmin"], users["sysadmin"], [Role.AUDITOR])
    services.approve(users["auditor"], pending)
    assert set(users["sysadmin"].role_grants.values_list("role", flat=True)) == {Role.AUDITOR}


def test_page_refuses_two_admin_roles(users, client_for):
    client = client_for(users["secadmin"])
    target = users["agent"]
    response = client.post(f"/accounts/grants/{target.pk}/", {"roles": [Role.SYSTEM_ADMIN, Role.AUDITOR]})
    assert response.status_code == 200
    assert "三员分设" in response.content.decode()
    assert set(target.role_grants.values_list("role", flat=True)) == {Role.AGENT}


def test_admin_refuses_second_admin_role(users, client_for):
    client = client_for(users["secadmin"])
    response = client.post(
        "/admin/accounts/userrole/add/",
        {
            "user": users["auditor"].pk,
            "role": Role.SYSTEM_ADMIN,
            "granted_at_0": "2026-11-24",
            "granted_at_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    assert "三员分设" in response.content.decode()
    assert not UserRole.objects.filter(user=users["auditor"], role=Role.SYSTEM_ADMIN).exists()


def test_api_refuses_two_admin_roles(users, client_for):
    client = client_for(users["secadmin"])
    response = client.put(
        "/api/accounts/users/t_agent/roles",
        json.dumps({"roles": [Role.SECURITY_ADMIN, Role.AUDITOR]}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "三员分设" in response.json()["detail"]


def test_cli_refuses_two_admin_roles(users, monkeypatch, otp_for):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(users["secadmin"]))
    with pytest.raises(CommandError, match="三员分设"):
        call_command("accounts", "roles", "t_agent", "sysadmin", "auditor", "--actor", "t_secadmin")


def test_no_superuser(db):
    with pytest.raises(ValidationError, match="不设超级用户"):
        User.objects.create_superuser("root", "", PASSWORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="root2", is_superuser=True)


# --- the system administrator: manages accounts; cannot grant roles, cannot read the audit log ----------


def test_sysadmin_cannot_grant_on_any_path(users, client_for, token_for, monkeypatch, otp_for):
    sysadmin, target = users["sysadmin"], users["agent"]
    client = client_for(sysadmin)
    assert client.get("/accounts/grants/").status_code == 403
    assert client.post(f"/accounts/grants/{target.pk}/", {"roles": [Role.PROJECT_MANAGER]}).status_code == 403
    assert client.get("/admin/accounts/userrole/add/").status_code == 403
    response = client.post("/admin/accounts/userrole/add/", {"user": target.pk, "role": Role.PROJECT_MANAGER})
    assert response.status_code == 403
    api = client.put(
        "/api/accounts/users/t_agent/roles",
        json.dumps({"roles": ["pm"]}),
        content_type="application/json",
        **token_for(sysadmin),
    )
    assert api.status_code == 403
    api = client.put(
        "/api/accounts/users/t_agent/regions",
        json.dumps({"regions": ["150000000"]}),
        content_type="application/json",
        **token_for(sysadmin),
    )
    assert api.status_code == 403
    with pytest.raises(PermissionDenied):
        services.set_roles(sysadmin, target, [Role.PROJECT_MANAGER])
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(sysadmin))
    with pytest.raises(CommandError, match="无权限"):
        call_command("accounts", "roles", "t_agent", "pm", "--actor", "t_sysadmin")
    monkeypatch.setenv("CAIWEI_OTP", otp_for(sysadmin))
    with pytest.raises(CommandError, match="无权限"):
        call_command("accounts", "regions", "t_agent", "150000000", "--actor", "t_sysadmin")
    assert set(target.role_grants.values_list("role", flat=True)) == {Role.AGENT}
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor="t_sysadmin").count() >= 6


def test_sysadmin_cannot_read_audit_on_any_path(users, client_for, token_for, monkeypatch, otp_for):
    sysadmin = users["sysadmin"]
    client = client_for(sysadmin)
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403
    assert client.get("/admin/audit/auditevent/").status_code == 403
    assert client.get("/api/audit/events", **token_for(sysadmin)).status_code == 403
    assert client.get("/api/audit/export", **token_for(sysadmin)).status_code == 403
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(sysadmin))
    with pytest.raises(CommandError, match="无权限"):
        call_command("audit", "export", "--actor", "t_sysadmin", stdout=StringIO())


def test_sysadmin_cannot_reset_auditor_password_alone(users, client_for):
    """Reset alone, the system administrator could sign in as the auditor: it takes a second person."""
    auditor = users["auditor"]
    client = client_for(users["sysadmin"])
    response = client.post(
        f"/admin/accounts/user/{auditor.pk}/password/",
        {"password1": "An0ther-Passw0rd!", "password2": "An0ther-Passw0rd!", "usable_password": "true"},
    )
    assert response.status_code == 302
    pending = services.reset_password(users["sysadmin"], users["engineer"], "An0ther-Passw0rd!")
    assert pending is None  # an ordinary account: at once
    with pytest.raises(ValidationError, match="待批准"):
        services.reset_password(users["sysadmin"], auditor, "Yet-An0ther-Passw0rd!")  # one already waits
    auditor.refresh_from_db()
    assert auditor.check_password(PASSWORD)


# --- the security administrator: grants roles and regions; nothing else --------------------------------


def test_secadmin_cannot_manage_accounts_or_read_audit(users, client_for, token_for, monkeypatch, otp_for):
    secadmin = users["secadmin"]
    client = client_for(secadmin)
    assert client.get("/admin/accounts/user/add/").status_code == 403
    response = client.post(
        "/admin/accounts/user/add/",
        {"username": "x", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 403
    assert client.get(f"/admin/accounts/user/{users['agent'].pk}/password/").status_code == 403
    assert client.get("/audit/").status_code == 403
    assert client.get("/api/audit/events", **token_for(secadmin)).status_code == 403
    api = client.post(
        "/api/accounts/users",
        json.dumps({"username": "x", "password": PASSWORD}),
        content_type="application/json",
        **token_for(secadmin),
    )
    assert api.status_code == 403
    with pytest.raises(PermissionDenied):
        services.create_user(secadmin, username="x", password=PASSWORD)
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(secadmin))
    with pytest.raises(CommandError, match="无权限"):
        call_command("accounts", "create", "x", "--actor", "t_secadmin")
    monkeypatch.setenv("CAIWEI_OTP", otp_for(secadmin))
    with pytest.raises(CommandError, match="无权限"):
        call_command("audit", "export", "--actor", "t_secadmin", stdout=StringIO())
    assert not User.objects.filter(username="x").exists()


def test_secadmin_grants_on_every_path(users, client_for, token_for, monkeypatch, otp_for):
    secadmin, target = users["secadmin"], users["agent"]
    client = client_for(secadmin)
    response = client.post(
        f"/accounts/grants/{target.pk}/", {"roles": [Role.AGENT, Role.ENGINEER], "regions": ["152501000"]}
    )
    assert response.status_code == 302
    assert set(target.role_grants.values_list("role", flat=True)) == {Role.AGENT, Role.ENGINEER}
    api = client.put(
        "/api/accounts/users/t_agent/roles",
        json.dumps({"roles": ["pm"]}),
        content_type="application/json",
        **token_for(secadmin),
    )
    assert api.status_code == 200 and api.json()["roles"] == ["pm"]
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(secadmin))
    call_command("accounts", "regions", "t_agent", "152500000", "--actor", "t_secadmin", stdout=StringIO())
    assert list(target.regions.values_list("code", flat=True)) == ["152500000"]
    grant = AuditEvent.objects.filter(object_type="accounts.regiongrant", action=AuditAction.CREATE).first()
    assert grant.actor == "t_secadmin" and grant.source == "cli"


# --- the auditor: reads and exports the audit log; nothing else ----------------------------------------


def test_auditor_cannot_manage_or_grant(users, client_for, token_for, monkeypatch, otp_for):
    auditor = users["auditor"]
    client = client_for(auditor)
    assert client.get("/admin/accounts/user/").status_code == 403
    assert client.get("/accounts/grants/").status_code == 403
    assert (
        client.put(
            "/api/accounts/users/t_agent/roles",
            json.dumps({"roles": ["pm"]}),
            content_type="application/json",
            **token_for(auditor),
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/accounts/users",
            json.dumps({"username": "x", "password": PASSWORD}),
            content_type="application/json",
            **token_for(auditor),
        ).status_code
        == 403
    )
    assert client.post("/api/accounts/users/t_agent/unlock", **token_for(auditor)).status_code == 403
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(auditor))
    with pytest.raises(CommandError, match="无权限"):
        call_command("accounts", "roles", "t_agent", "pm", "--actor", "t_auditor")
    monkeypatch.setenv("CAIWEI_OTP", otp_for(auditor))
    with pytest.raises(CommandError, match="无权限"):
        call_command("accounts", "unlock", "t_agent", "--actor", "t_auditor")


def test_auditor_reads_and_exports_on_every_path(
    users, client_for, token_for, monkeypatch, tmp_path, otp_for
):
    auditor = users["auditor"]
    client = client_for(auditor)
    page = client.get("/audit/?action=create")
    assert page.status_code == 200 and "t_agent" in page.content.decode()
    csv_body = b"".join(client.get("/audit/export.csv").streaming_content).decode("utf-8-sig")
    assert csv_body.splitlines()[0].startswith("序号,时间（北京时间，UTC+8）,动作")
    api = client.get("/api/audit/events?actor=t_secadmin", **token_for(auditor))
    assert api.status_code == 200
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(auditor))
    out = tmp_path / "audit.csv"
    call_command("audit", "export", "--actor", "t_auditor", "-o", str(out), stdout=StringIO())
    assert out.read_text(encoding="utf-8-sig").count("\n") > 10
    exports = AuditEvent.objects.filter(action=AuditAction.EXPORT, actor="t_auditor")
    assert exports.count() == 2
    # Nobody, the auditor included, can change a row through the admin.
    event = AuditEvent.objects.order_by("seq").first()
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"actor": "x"}).status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.actor != "x"
