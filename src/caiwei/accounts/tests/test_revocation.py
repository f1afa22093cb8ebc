"""Sessions and API tokens die with a password, role or status change: an old cookie and an old Bearer token
stop working, whichever path made the change."""

import pytest
from django.test import Client

from caiwei.accounts import services
from caiwei.accounts.models import ApiToken, User
from caiwei.accounts.roles import Role
from caiwei.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signed_in(username: str) -> Client:
    """A session from the real login page (not force_login), as a browser would hold it."""
    client = Client()
    assert client.post("/login/", {"username": username, "password": PASSWORD}).status_code == 302
    assert client.get("/accounts/me/").status_code == 200
    return client


def bearer(user: User) -> dict:
    _, key = ApiToken.issue(user, "脚本")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def works(client: Client, auth: dict) -> tuple[bool, bool]:
    page = client.get("/accounts/me/")
    api = Client().get("/api/accounts/me", **auth)
    return page.status_code == 200, api.status_code == 200


CHANGES = {
    "password reset": lambda u, s: services.reset_password(s["sysadmin"], u, "Brand-New-Passw0rd"),
    "role granted": lambda u, s: services.set_roles(s["secadmin"], u, [Role.AGENT, Role.ENGINEER]),
    "role revoked": lambda u, s: services.set_roles(s["secadmin"], u, []),
    "deactivated": lambda u, s: services.set_active(s["sysadmin"], u, False),
    "locked": lambda u, s: services.lock(s["sysadmin"], u),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_old_session_and_token_stop_working(users, change):
    agent = users["agent"]
    client, auth = signed_in("t_agent"), bearer(agent)
    assert works(client, auth) == (True, True)
    CHANGES[change](agent, users)
    assert works(client, auth) == (False, False)
    assert not ApiToken.objects.filter(user=agent, revoked=False).exists()
    if change != "deactivated" and change != "locked":
        # Signing in again gives a working session: the change ended the old ones, not the account.
        password = "Brand-New-Passw0rd" if change == "password reset" else PASSWORD
        fresh = Client()
        assert fresh.post("/login/", {"username": "t_agent", "password": password}).status_code == 302
        assert fresh.get("/accounts/me/").status_code == 200


def test_unlock_does_not_revive_a_locked_session(users):
    agent = users["agent"]
    client, auth = signed_in("t_agent"), bearer(agent)
    services.lock(users["sysadmin"], agent)
    services.unlock(users["sysadmin"], agent)
    assert works(client, auth) == (False, False)


def test_lockout_by_failures_ends_sessions_too(users):
    from django.conf import settings

    client, auth = signed_in("t_agent"), bearer(users["agent"])
    for _ in range(settings.LOCKOUT_THRESHOLD):
        Client().post("/login/", {"username": "t_agent", "password": "wrong"})
    assert works(client, auth) == (False, False)


def test_admin_paths_revoke_too(users, client_for):
    """The admin's own password form and the approved request go through the same model rule."""
    agent = users["agent"]
    client, auth = signed_in("t_agent"), bearer(agent)
    response = client_for(users["sysadmin"]).post(
        f"/admin/accounts/user/{agent.pk}/password/",
        {"password1": "Brand-New-Passw0rd", "password2": "Brand-New-Passw0rd", "usable_password": "true"},
    )
    assert response.status_code == 302
    assert works(client, auth) == (False, False)
    # An approved request on an administrator: the old session and token of the subject die as well.
    auditor = users["auditor"]
    auditor_session = Client()
    auditor_session.force_login(auditor)
    auditor_auth = bearer(auditor)
    assert works(auditor_session, auditor_auth) == (True, True)
    make = User.objects.create(username="t_auditor2")
    services.set_roles(None, make, [Role.AUDITOR])
    req = services.set_roles(users["secadmin"], auditor, [])
    services.approve(users["sysadmin"], req)
    assert works(auditor_session, auditor_auth) == (False, False)


def test_own_password_change_keeps_this_session_and_ends_the_others(users):
    here, elsewhere = signed_in("t_agent"), signed_in("t_agent")
    auth = bearer(users["agent"])
    response = here.post(
        "/accounts/me/",
        {
            "form": "password",
            "old_password": PASSWORD,
            "new_password1": "Brand-New-Passw0rd",
            "new_password2": "Brand-New-Passw0rd",
        },
    )
    assert response.status_code == 302
    assert here.get("/accounts/me/").status_code == 200
    assert works(elsewhere, auth) == (False, False)
