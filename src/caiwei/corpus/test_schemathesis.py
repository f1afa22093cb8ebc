"""Schemathesis against the OpenAPI document of /api/: generated requests (valid and invalid) for every operation,
with a Bearer token of a user holding the roles, sent in-process to the Django WSGI application on the test
database. No server error may come back (the not_a_server_error check).

Nothing leaves the machine: jobs (a sandbox generation, a check run) are recorded but not run, and connecting to a
target database is refused before any driver is reached.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from caiwei.api import api

MAX_EXAMPLES = 8  # per operation: the whole file stays within about three minutes on the 2-core machine
AREA_EXAMPLES = 4

document = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api"))
document.app = get_wsgi_application()
# Every operation as the project manager (the widest business role); each area again as the role that works it.
schema = document
areas = {
    "agent": document.include(path_regex="^/api/desk/"),
    "secadmin": document.include(path_regex="^/api/accounts/"),
    "auditor": document.include(path_regex="^/api/(audit|jobs)"),
}
SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": list(HealthCheck)}


@pytest.fixture
def bearer(request, users, token_for, monkeypatch):
    """The Authorization header of the role's test account; the app isolated from jobs and target databases."""
    import sqlalchemy as sa

    def no_connection(*args, **kwargs):
        raise sa.exc.ArgumentError("连接目标库在接口模糊测试中被禁用")

    monkeypatch.setattr("caiwei.jobs.tasks.run_job_task", lambda pk: None)
    monkeypatch.setattr("caiwei.checks.models.TargetDatabase.engine", no_connection)
    monkeypatch.setattr("caiwei.checks.runner.connect", no_connection)
    # The WSGI handler closes the connection after each request, which would end the test's transaction: the
    # Django test client does the same as this while it runs a request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield token_for(users[request.param])["HTTP_AUTHORIZATION"]
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.parametrize("bearer", ["pm"], indirect=True)
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
def test_api_has_no_server_errors(case, bearer):
    case.call_and_validate(headers={"Authorization": bearer}, checks=[not_a_server_error])


@pytest.mark.django_db
@pytest.mark.parametrize("bearer", ["agent"], indirect=True)
@areas["agent"].parametrize()
@settings(max_examples=AREA_EXAMPLES, **SETTINGS)
def test_desk_as_agent(case, bearer):
    case.call_and_validate(headers={"Authorization": bearer}, checks=[not_a_server_error])


@pytest.mark.django_db
@pytest.mark.parametrize("bearer", ["secadmin"], indirect=True)
@areas["secadmin"].parametrize()
@settings(max_examples=AREA_EXAMPLES, **SETTINGS)
def test_accounts_as_security_admin(case, bearer):
    case.call_and_validate(headers={"Authorization": bearer}, checks=[not_a_server_error])


@pytest.mark.django_db
@pytest.mark.parametrize("bearer", ["auditor"], indirect=True)
@areas["auditor"].parametrize()
@settings(max_examples=AREA_EXAMPLES, **SETTINGS)
def test_audit_as_auditor(case, bearer):
    case.call_and_validate(headers={"Authorization": bearer}, checks=[not_a_server_error])
