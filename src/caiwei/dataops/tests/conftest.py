"""A finance database on this machine's PostgreSQL (and MariaDB) registered as a writable target of the league, and
the accounts of data changes: an engineer (author), a finance approver, an engineer who is also an approver (may not
approve their own), and a county engineer (another region)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from caiwei.accounts.roles import Role

from .changes_support import TARGET_DB, make_accounts, server_url

LEAGUE, COUNTY = "152500000", "152502000"


def register(kind: str, region, name: str = "业务库"):
    import sqlalchemy as sa

    from caiwei.checks.models import Target, TargetDatabase

    server_url(kind)
    label = "PostgreSQL" if kind == "postgresql" else "MariaDB"
    target = Target.objects.create(name=f"变更对象 {label}", system="国库集中支付", region=region)
    database = TargetDatabase.objects.create(
        target=target,
        name=name,
        dialect="postgresql" if kind == "postgresql" else "mysql",
        host="127.0.0.1",
        port=5432 if kind == "postgresql" else 3306,
        username="postgres" if kind == "postgresql" else "root",
        database=TARGET_DB,
        read_only=False,
    )
    engine = database.engine()
    assert isinstance(engine, sa.Engine)
    return database, engine


@pytest.fixture
def changes_world(regions, make_user, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    database, engine = register("postgresql", regions[LEAGUE])
    make_accounts(engine)
    people = {
        "engineer": make_user("c_engineer", Role.ENGINEER, regions=(LEAGUE,)),
        "pm": make_user("c_pm", Role.PROJECT_MANAGER, regions=(LEAGUE,)),
        "approver": make_user("c_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,)),
        "both": make_user("c_both", Role.ENGINEER, Role.FINANCE_APPROVER, regions=(LEAGUE,)),
        "county": make_user("c_county", Role.ENGINEER, Role.FINANCE_APPROVER, regions=(COUNTY,)),
        "finance": make_user("c_finance", Role.FINANCE_STAFF, regions=(LEAGUE,)),
    }
    yield {"database": database, "engine": engine, "people": people, "region": regions[LEAGUE]}
    engine.dispose()


def window() -> dict:
    now = timezone.now()
    return {"window_start": now - timedelta(minutes=5), "window_end": now + timedelta(hours=2)}


PLANS = {"emergency_plan": "发现异常立即停止，通知厂商", "rollback_plan": "按前镜像一键回滚"}
