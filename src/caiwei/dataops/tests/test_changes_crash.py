"""A sample of the crash trials (bench/change_crash.py runs hundreds, each in a fresh `caiwei data change` process;
here a fork of the test process, to spare the start-up): on PostgreSQL and on MariaDB, an execution
killed with SIGKILL right after each of six journal steps, and a rollback killed after each of three; recovery after
each; every change fully applied with a complete before-image or not at all, every rollback restoring exactly the
before-image or leaving the change applied, nothing left running, no row lost."""

from __future__ import annotations

import pytest

from caiwei.audit.context import acting_as
from caiwei.dataops import crashtrial

from .conftest import LEAGUE, register

pytestmark = pytest.mark.django_db(transaction=True)

EXEC_KILLS = ("begin", "image", "statement", "images", "commit", "committed")
ROLLBACK_KILLS = ("restore", "commit", "committed")


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_killed_at_each_journal_step_nothing_is_half_done(kind, regions, make_user, settings):
    from caiwei.accounts.roles import Role
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    ensure_defaults(BusinessCalendar, KeyPeriod)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    database, engine = register(kind, regions[LEAGUE])
    author = make_user("k_engineer", Role.ENGINEER, regions=(LEAGUE,))
    approver = make_user("k_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,))
    with acting_as(author, "test"):
        tally = crashtrial.run(
            database,
            engine,
            author,
            approver,
            label=kind,
            executions=len(EXEC_KILLS),
            rollbacks=0,
            rows=400,
            kill_steps=EXEC_KILLS,
            random_kills=False,
            pause=0,
            fork=True,
        )
        crashtrial.run_rollbacks(
            database, engine, author, approver, tally=tally, steps=ROLLBACK_KILLS, fork=True
        )
    engine.dispose()
    print(tally.line())
    assert tally.problems == []
    assert tally.killed == len(EXEC_KILLS) + len(ROLLBACK_KILLS)
    # killed before the commit: not applied; killed after it: applied (the marker decides)
    assert tally.applied == 1 and tally.not_applied == len(EXEC_KILLS) - 1
    assert tally.rolled_back == 1 and tally.rollback_not_applied == 2
