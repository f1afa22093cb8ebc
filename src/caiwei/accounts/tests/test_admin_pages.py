"""The system administrator's account screens in the Django admin, end to end."""

import pytest

from caiwei.accounts.models import User
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_sysadmin_creates_account_without_roles(users, client_for):
    client = client_for(users["sysadmin"])
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "new_agent",
            "full_name": "新坐席",
            "organization": "运维服务商",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="new_agent")
    assert user.full_name == "新坐席" and not user.role_codes and user.check_password(PASSWORD)
    event = AuditEvent.objects.get(
        action=AuditAction.CREATE, object_type="accounts.user", object_id=str(user.pk)
    )
    assert event.actor == "t_sysadmin" and event.source == "admin" and event.after["password"] == "******"


def test_sysadmin_form_has_no_role_or_superuser_fields(users, client_for):
    html = (
        client_for(users["sysadmin"])
        .get(f"/admin/accounts/user/{users['agent'].pk}/change/")
        .content.decode()
    )
    for field in ('name="is_superuser"', 'name="groups"', 'name="user_permissions"', 'name="is_staff"'):
        assert field not in html


def test_sysadmin_unlocks_from_admin(users, client_for):
    from django.utils import timezone

    agent = users["agent"]
    User.objects.filter(pk=agent.pk).update(locked_until=timezone.now() + timezone.timedelta(minutes=10))
    response = client_for(users["sysadmin"]).post(
        "/admin/accounts/user/", {"action": "unlock", "_selected_action": [agent.pk]}
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert not agent.is_locked
    assert AuditEvent.objects.filter(
        action=AuditAction.UPDATE, object_id=str(agent.pk), actor="t_sysadmin"
    ).exists()


def test_weak_password_refused_in_admin(users, client_for):
    response = client_for(users["sysadmin"]).post(
        "/admin/accounts/user/add/",
        {"username": "weak", "usable_password": "true", "password1": "abcdefghij", "password2": "abcdefghij"},
    )
    assert response.status_code == 200 and "至少 3 类" in response.content.decode()
    assert not User.objects.filter(username="weak").exists()


def test_business_roles_have_no_admin(users, client_for):
    for role in ("agent", "unit", "bank", "finance"):
        response = client_for(users[role]).get("/admin/")
        assert response.status_code == 403 or "/login/" in response.get("Location", "")
