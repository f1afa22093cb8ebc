"""三员分设 that holds: nobody changes their own account, none silences another alone, changes touching the
three take two people, and each of the three roles always keeps an active holder — on every path."""

import json
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from caiwei.accounts import services
from caiwei.accounts.models import AccountChangeRequest, ChangeKind, ChangeStatus, User
from caiwei.accounts.roles import Role
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def roles_of(user: User) -> set[str]:
    return set(user.role_grants.values_list("role", flat=True))


def put_json(client, url, data, **extra):
    return client.put(url, json.dumps(data), content_type="application/json", **extra)


def post_json(client, url, data, **extra):
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


# --- nobody changes their own roles, regions or status ----------------------------------------------------


def test_secadmin_cannot_grant_itself_on_any_path(users, client_for, token_for, monkeypatch, otp_for):
    """The finding: the security administrator gave itself the auditor's or the project manager's role."""
    secadmin = users["secadmin"]
    client = client_for(secadmin)
    with pytest.raises(PermissionDenied, match="自己"):
        services.set_roles(secadmin, secadmin, [Role.SECURITY_ADMIN, Role.PROJECT_MANAGER])
    with pytest.raises(PermissionDenied, match="自己"):
        services.set_regions(secadmin, secadmin, ["150000000"])
    page = client.post(
        f"/accounts/grants/{secadmin.pk}/", {"roles": [Role.SECURITY_ADMIN, Role.PROJECT_MANAGER]}
    )
    assert page.status_code == 200 and "不能修改自己" in page.content.decode()
    api = put_json(
        client, "/api/accounts/users/t_secadmin/roles", {"roles": ["secadmin", "pm"]}, **token_for(secadmin)
    )
    assert api.status_code == 403
    api = put_json(
        client, "/api/accounts/users/t_secadmin/regions", {"regions": ["150000000"]}, **token_for(secadmin)
    )
    assert api.status_code == 403
    admin_add = client.post(
        "/admin/accounts/userrole/add/",
        {
            "user": secadmin.pk,
            "role": Role.PROJECT_MANAGER,
            "granted_at_0": "2026-11-24",
            "granted_at_1": "10:00:00",
        },
    )
    assert admin_add.status_code == 200 and "不能给自己" in admin_add.content.decode()
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(secadmin))
    with pytest.raises(CommandError, match="自己"):
        call_command("accounts", "roles", "t_secadmin", "secadmin", "pm", "--actor", "t_secadmin")
    # Swapping its own role for the auditor's is refused too (it would then read the log).
    with pytest.raises(PermissionDenied):
        services.set_roles(secadmin, secadmin, [Role.AUDITOR])
    assert roles_of(secadmin) == {Role.SECURITY_ADMIN} and not secadmin.regions.exists()
    assert not AccountChangeRequest.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor="t_secadmin").count() >= 4


def test_sysadmin_cannot_change_its_own_status(users, client_for, token_for):
    sysadmin = users["sysadmin"]
    for action in ("deactivate", "lock", "unlock", "reset_otp"):
        with pytest.raises(PermissionDenied, match="自己"):
            services.change_status(sysadmin, sysadmin, action)
    api = post_json(
        client_for(sysadmin),
        "/api/accounts/users/t_sysadmin/status",
        {"action": "lock"},
        **token_for(sysadmin),
    )
    assert api.status_code == 403
    response = client_for(sysadmin).post(
        "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [sysadmin.pk]}
    )
    assert response.status_code == 302
    sysadmin.refresh_from_db()
    assert sysadmin.is_active and not sysadmin.is_locked


# --- none silences another ----------------------------------------------------------------------------------


def test_sysadmin_cannot_deactivate_auditor_through_the_admin_form(users, client_for):
    """The finding: the admin's change form let the system administrator untick the auditor's 有效 box."""
    auditor = users["auditor"]
    client = client_for(users["sysadmin"])
    response = client.post(
        f"/admin/accounts/user/{auditor.pk}/change/",
        {
            "username": auditor.username,
            "full_name": "",
            "organization": "",
            "email": "",
            "locked_until_0": "2099-01-01",
            "locked_until_1": "00:00:00",
            # is_active left out: an unticked box
        },
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    auditor.refresh_from_db()
    assert auditor.is_active and not auditor.is_locked
    # Nor can it rename the auditor, which would keep them out just as well.
    client.post(f"/admin/accounts/user/{auditor.pk}/change/", {"username": "renamed", "full_name": "x"})
    auditor.refresh_from_db()
    assert auditor.username == "t_auditor"


@pytest.mark.parametrize("victim", ["auditor", "secadmin"])
def test_sysadmin_cannot_silence_another_alone_on_any_path(
    users, make_user, client_for, token_for, monkeypatch, otp_for, victim
):
    sysadmin, target = users["sysadmin"], users[victim]
    make_user(
        "t_spare", users[victim].role_grants.get().role
    )  # not the last holder: the rule tested is two people
    auditor_session = client_for(target)
    client = client_for(sysadmin)
    # admin actions
    for action in ("deactivate", "lock"):
        response = client.post("/admin/accounts/user/", {"action": action, "_selected_action": [target.pk]})
        assert response.status_code == 302
    # the page
    page = client.post("/accounts/requests/", {"username": target.username, "action": "reset_otp"})
    assert page.status_code == 200 and "未绑定动态口令" in page.content.decode()
    page = client.post(
        "/accounts/requests/",
        {"username": target.username, "action": "reset_password", "password": "Sil3nce-The-Audit0r"},
    )
    assert page.status_code == 302
    # the API
    api = post_json(
        client, f"/api/accounts/users/{target.username}/status", {"action": "unlock"}, **token_for(sysadmin)
    )
    assert api.status_code == 202 and api.json()["status"] == "pending"
    api = post_json(
        client,
        f"/api/accounts/users/{target.username}/status",
        {"action": "deactivate"},
        **token_for(sysadmin),
    )
    assert (
        api.status_code == 400 and "待批准" in api.json()["detail"]
    )  # the admin action's request waits already
    # the command
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(sysadmin))
    with pytest.raises(CommandError, match="待批准"):
        call_command(
            "accounts", "status", target.username, "lock", "--actor", "t_sysadmin", stdout=StringIO()
        )
    target.refresh_from_db()
    assert target.is_active and not target.is_locked and target.check_password(PASSWORD)
    kinds = set(
        AccountChangeRequest.objects.filter(subject=target, status="pending").values_list("kind", flat=True)
    )
    assert kinds == {ChangeKind.DEACTIVATE, ChangeKind.LOCK, ChangeKind.RESET_PASSWORD, ChangeKind.UNLOCK}
    assert auditor_session.get("/accounts/me/").status_code == 200  # still signed in


def test_sysadmin_cannot_delete_another_administrator(users, client_for):
    client = client_for(users["sysadmin"])
    auditor = users["auditor"]
    assert client.post(f"/admin/accounts/user/{auditor.pk}/delete/", {"post": "yes"}).status_code == 403
    with pytest.raises(PermissionDenied):
        services.delete_user(users["sysadmin"], auditor)
    assert User.objects.filter(pk=auditor.pk).exists()


def test_secadmin_cannot_revoke_a_role_in_the_admin(users, client_for):
    client = client_for(users["secadmin"])
    grant = users["auditor"].role_grants.get()
    assert client.post(f"/admin/accounts/userrole/{grant.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(
        "/admin/accounts/userrole/",
        {"action": "delete_selected", "_selected_action": [grant.pk], "post": "yes"},
    )
    assert roles_of(users["auditor"]) == {Role.AUDITOR}
    assert response.status_code in (200, 302, 403)


# --- two people ----------------------------------------------------------------------------------------------


def test_administrator_role_takes_two_people(users, client_for, token_for):
    secadmin, sysadmin, auditor, agent = (
        users["secadmin"],
        users["sysadmin"],
        users["auditor"],
        users["agent"],
    )
    response = put_json(
        client_for(secadmin),
        "/api/accounts/users/t_agent/roles",
        {"roles": ["agent", "auditor"], "reason": "增设审计员"},
        **token_for(secadmin),
    )
    assert response.status_code == 202, response.content
    req = AccountChangeRequest.objects.get(pk=response.json()["id"])
    assert (
        req.kind == ChangeKind.SET_ROLES
        and req.proposer == secadmin
        and req.proposer_role == Role.SECURITY_ADMIN
    )
    assert roles_of(agent) == {Role.AGENT}  # nothing yet
    # The proposer, the subject and another holder of the proposer's duty may not decide.
    with pytest.raises(PermissionDenied, match="提出人"):
        services.approve(secadmin, req)
    with pytest.raises(PermissionDenied):
        services.approve(agent, req)
    other_secadmin = User.objects.create(username="t_secadmin2")
    services.set_roles(None, other_secadmin, [Role.SECURITY_ADMIN])
    with pytest.raises(PermissionDenied, match="以外"):
        services.approve(other_secadmin, req)
    # The page lists it; the system administrator approves there.
    page = client_for(sysadmin).get("/accounts/requests/")
    assert page.status_code == 200 and f'data-request="{req.pk}"' in page.content.decode()
    assert (
        client_for(sysadmin).post(f"/accounts/requests/{req.pk}/decide/", {"decision": "approve"}).status_code
        == 302
    )
    req.refresh_from_db()
    assert req.status == ChangeStatus.APPROVED and req.decided_by == sysadmin
    assert roles_of(agent) == {Role.AGENT, Role.AUDITOR}
    grant = AuditEvent.objects.filter(object_type="accounts.userrole", action=AuditAction.CREATE)
    grant = grant.filter(object_id=str(agent.role_grants.get(role=Role.AUDITOR).pk)).get()
    assert grant.actor == "t_sysadmin" and grant.after["role"] == "auditor"
    assert AuditEvent.objects.filter(
        object_type="accounts.accountchangerequest", action=AuditAction.CREATE
    ).exists()
    approved = AuditEvent.objects.filter(
        object_type="accounts.accountchangerequest", action=AuditAction.ADMIN
    ).last()
    assert approved.detail["proposer"] == "t_secadmin" and approved.detail["approver"] == "t_sysadmin"
    # Decided once: no second decision.
    with pytest.raises(ValidationError, match="已批准"):
        services.reject(auditor, req)
    api = client_for(auditor).get("/api/accounts/requests?status=approved", **token_for(auditor))
    assert api.status_code == 200 and api.json()[0]["decided_by"] == "t_sysadmin"


def test_database_refuses_approval_by_proposer_or_subject(users, make_user):
    make_user("t_auditor2", Role.AUDITOR)
    req = services.set_active(users["sysadmin"], users["auditor"], False)
    for person in (users["sysadmin"], users["auditor"]):
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountChangeRequest.objects.filter(pk=req.pk).update(
                status=ChangeStatus.APPROVED, decided_by=person, decided_at=timezone.now()
            )
    with pytest.raises(IntegrityError), transaction.atomic():
        AccountChangeRequest.objects.create(
            subject=users["sysadmin"],
            kind=ChangeKind.LOCK,
            proposer=users["sysadmin"],
            proposer_role="sysadmin",
        )


def test_password_reset_of_an_administrator_waits_as_a_hash(users, client_for, token_for):
    sysadmin, secadmin, auditor = users["sysadmin"], users["secadmin"], users["auditor"]
    new = "Aud1tor-Forgot-It!"
    response = post_json(
        client_for(sysadmin),
        "/api/accounts/users/t_auditor/password",
        {"password": new},
        **token_for(sysadmin),
    )
    assert response.status_code == 202
    req = AccountChangeRequest.objects.get(pk=response.json()["id"])
    assert new not in req.secret and req.secret.startswith("argon2")
    created = AuditEvent.objects.get(object_type="accounts.accountchangerequest", action=AuditAction.CREATE)
    assert created.after["secret"] == "******" and new not in json.dumps(created.after)
    auditor.refresh_from_db()
    assert auditor.check_password(PASSWORD)
    # The auditor is the subject, the system administrator proposed: the security administrator decides.
    decided = post_json(
        client_for(secadmin),
        f"/api/accounts/requests/{req.pk}/decision",
        {"decision": "approve"},
        **token_for(secadmin),
    )
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    auditor.refresh_from_db()
    req.refresh_from_db()
    assert auditor.check_password(new) and req.secret == ""


def test_withdraw_and_reject(users, make_user, client_for):
    make_user("t_secadmin2", Role.SECURITY_ADMIN)
    req = services.lock(users["sysadmin"], users["secadmin"])
    with pytest.raises(PermissionDenied):
        services.withdraw(users["auditor"], req)
    services.withdraw(users["sysadmin"], req)
    req.refresh_from_db()
    assert req.status == ChangeStatus.WITHDRAWN
    req = services.lock(users["sysadmin"], users["secadmin"])
    client_for(users["auditor"]).post(
        f"/accounts/requests/{req.pk}/decide/", {"decision": "reject", "note": "无理由"}
    )
    req.refresh_from_db()
    users["secadmin"].refresh_from_db()
    assert (
        req.status == ChangeStatus.REJECTED
        and req.decided_by == users["auditor"]
        and not users["secadmin"].is_locked
    )


def test_cli_proposes_and_another_approves(users, make_user, monkeypatch, otp_for):
    make_user("t_secadmin2", Role.SECURITY_ADMIN)
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAIWEI_OTP", otp_for(users["sysadmin"]))
    out = StringIO()
    call_command("accounts", "status", "t_secadmin", "lock", "--actor", "t_sysadmin", stdout=out)
    assert "已提交申请" in out.getvalue()
    req = AccountChangeRequest.objects.get()
    monkeypatch.setenv("CAIWEI_OTP", otp_for(users["secadmin"]))
    with pytest.raises(CommandError, match="对象|自己"):
        call_command("accounts", "decide", str(req.pk), "approve", "--actor", "t_secadmin", stdout=StringIO())
    monkeypatch.setenv("CAIWEI_OTP", otp_for(users["auditor"]))
    out = StringIO()
    call_command("accounts", "decide", str(req.pk), "approve", "--actor", "t_auditor", stdout=out)
    assert "已批准" in out.getvalue()
    users["secadmin"].refresh_from_db()
    assert users["secadmin"].is_locked


# --- always an active holder --------------------------------------------------------------------------------


def test_last_holder_cannot_be_revoked_deactivated_or_locked(users, make_user):
    secadmin, sysadmin, auditor = users["secadmin"], users["sysadmin"], users["auditor"]
    with pytest.raises(ValidationError, match="唯一在用"):
        services.set_roles(secadmin, auditor, [])
    with pytest.raises(ValidationError, match="唯一在用"):
        services.set_active(sysadmin, auditor, False)
    with pytest.raises(ValidationError, match="唯一在用"):
        services.lock(sysadmin, auditor)
    with pytest.raises(ValidationError, match="唯一在用"):
        services.set_roles(secadmin, sysadmin, [Role.PROJECT_MANAGER])
    # With a second auditor, one may go; then the other is the last again.
    second = make_user("t_auditor2", Role.AUDITOR)
    first = services.set_active(sysadmin, auditor, False)
    other = services.set_roles(secadmin, second, [])
    services.approve(secadmin, first)
    with pytest.raises(ValidationError, match="唯一在用"):
        services.approve(sysadmin, other)  # both were fine when proposed; approving both would leave none
    auditor.refresh_from_db()
    assert not auditor.is_active and roles_of(second) == {Role.AUDITOR}
    assert User.objects.filter(role_grants__role=Role.AUDITOR, is_active=True).count() == 1


def test_ordinary_accounts_need_one_person(users):
    """Two people only where the three are concerned: the system administrator still runs ordinary accounts."""
    sysadmin, engineer = users["sysadmin"], users["engineer"]
    assert services.set_active(sysadmin, engineer, False) is None
    engineer.refresh_from_db()
    assert not engineer.is_active
    assert services.set_roles(users["secadmin"], users["agent"], [Role.AGENT, Role.ENGINEER]) is None
    assert not AccountChangeRequest.objects.exists()
