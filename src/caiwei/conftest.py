"""Shared fixtures: the demo region tree and one account per role."""

import pytest
from django.test import Client

from caiwei.accounts import services
from caiwei.accounts.models import User
from caiwei.accounts.roles import Role
from caiwei.regions.demo import ensure_demo_regions
from caiwei.regions.models import Region

PASSWORD = "Caiwei-Test-2026!"


def scratch_db(base: str) -> str:
    """The name of a scratch database on the PostgreSQL or MariaDB server for this test process: two runs on one
    machine (another DATABASE_URL, another pytest-xdist worker) never drop each other's."""
    import os
    import re

    own = re.sub(r"\W", "_", os.environ.get("DATABASE_URL", "").rsplit("/", 1)[-1])[-20:] or "default"
    # lower case: PostgreSQL folds an unquoted CREATE DATABASE name, so a URL naming caiwei_CI would miss it
    return f"{base}_{own}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"[:63].lower()


@pytest.fixture(autouse=True)
def _data_migration_rows(request):
    """The default business calendars and key periods (a data migration's rows, which every SLA clock needs), back
    where a transactional test of the same worker flushed them: with pytest-xdist a worker may run a flushing file
    before this one. One cheap query per test when nothing is missing. (Shipped bank file layouts and alert rules are
    ensured by the tests that use them.)"""
    names = request.fixturenames
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in names or "live_server" in names or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or marker is not None:
        request.getfixturevalue("db")
    else:
        return
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    try:
        present = BusinessCalendar.objects.exists()
    except RuntimeError:  # no Django database for this test (a module's own fixture named "db", say)
        return
    if not present:
        ensure_defaults(BusinessCalendar, KeyPeriod)


@pytest.fixture
def regions(db):
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    ensure_demo_regions()
    # The default calendars come from a data migration; a transactional test before this one may have flushed them.
    ensure_defaults(BusinessCalendar, KeyPeriod)
    return {r.code: r for r in Region.objects.all()}


@pytest.fixture
def make_user(db, regions):
    def make(username: str, *roles: str, regions: tuple[str, ...] = ()) -> User:
        user = services.create_user(None, username=username, password=PASSWORD)
        services.set_roles(None, user, roles)
        services.set_regions(None, user, regions)
        return user

    return make


@pytest.fixture
def users(make_user):
    return {
        "agent": make_user("t_agent", Role.AGENT, regions=("152500000",)),
        "engineer": make_user("t_engineer", Role.ENGINEER, regions=("152500000",)),
        "pm": make_user("t_pm", Role.PROJECT_MANAGER, regions=("152500000",)),
        "finance": make_user("t_finance", Role.FINANCE_STAFF, regions=("152500000",)),
        "approver": make_user("t_approver", Role.FINANCE_APPROVER, regions=("152500000",)),
        "unit": make_user("t_unit", Role.UNIT_USER, regions=("152502000",)),
        "bank": make_user("t_bank", Role.BANK_USER, regions=("152501000",)),
        "sysadmin": make_user("t_sysadmin", Role.SYSTEM_ADMIN),
        "secadmin": make_user("t_secadmin", Role.SECURITY_ADMIN),
        "auditor": make_user("t_auditor", Role.AUDITOR),
    }


@pytest.fixture
def client_for():
    def make(user: User) -> Client:
        # A role or status change raises the account's session epoch: log in with the current one.
        user.refresh_from_db(fields=["password", "auth_epoch"])
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def otp_for(db):
    """Bind an authenticator to a user (once) and return a code it accepts now; each call gives a usable one."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def code(user: User) -> str:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="测试", confirmed=True)
        # A code is accepted once per 30-second step: forget the last one so a test may sign in again at once.
        TOTPDevice.objects.filter(pk=device.pk).update(
            last_t=-1, drift=0, throttling_failure_count=0, throttling_failure_timestamp=None
        )
        return f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"

    return code


@pytest.fixture
def token_for(db):
    from caiwei.accounts.models import ApiToken

    def make(user: User) -> dict:
        _, key = ApiToken.issue(user, "test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return make
