"""Range restore handed to the data-change part for real (no stand-in): the rows chosen in the diff grid become one
change with several keyed statements on the same table, reviewed, approved by another person, executed with
before-images, and rolled back — on PostgreSQL and MariaDB (the platform opens SQLite targets read-only)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from caiwei.accounts.roles import Role
from caiwei.conftest import scratch_db
from caiwei.dataops import changes, changes_services
from caiwei.dataops import services_backups as services
from caiwei.dataops.models_backups import RangeRestore
from caiwei.dataops.models_changes import ChangeRequest
from caiwei.dataops.tests import test_backups_services as backups_tests
from caiwei.dataops.tests.test_backups_engine import drop_source, fill, make_source, read, vouchers
from caiwei.dataops.tests.test_backups_services import LEAGUE, register

world = backups_tests.world  # the same registered target and accounts as the backups tests


@pytest.fixture(params=["postgresql", "mariadb"])
def writable(request, world):
    conn = make_source(request.param, world["tmp"], scratch_db("rchg_live")[:50])
    fill(conn, 80)
    database = register(world, conn)
    database.read_only = False
    database.save()
    yield conn, database
    drop_source(conn)


def test_rows_chosen_in_a_range_restore_come_back_through_an_approved_change(
    writable,
    world,
    make_user,  # noqa: F811
):
    conn, database = writable
    engineer = world["engineer"]
    approver = make_user("rc_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,))
    backup = services.start_backup(engineer, database, inline=True)
    at_backup = read(conn)
    e = conn.engine()
    with e.begin() as c:
        c.execute(
            vouchers.update().where(vouchers.c.id.in_([3, 6])).values(payee="改了", amount=Decimal("9.99"))
        )
        c.execute(vouchers.delete().where(vouchers.c.id.in_([9, 12])))
        c.execute(vouchers.insert().values(id=999, region="152501000", payee="新增", amount=Decimal("1.00")))
    e.dispose()
    today = read(conn)

    restore = services.start_restore(engineer, backup, "vouchers", "region = '152501000'", inline=True)
    assert restore.status == RangeRestore.Status.READY, restore.error
    kinds = {tuple(r["key"]): r["kind"] for r in restore.rows}
    chosen_keys = {(3,), (9,), (12,), (999,)}  # 6 stays as today
    assert chosen_keys <= set(kinds)
    chosen = [n for n, r in enumerate(restore.rows) if tuple(r["key"]) in chosen_keys]
    change = services.generate_change(engineer, restore, chosen)
    change = ChangeRequest.objects.get(pk=change.pk)
    # one change, four keyed statements on one table (two UPDATE/INSERT/DELETE kinds), no review error
    assert [f for f in change.findings if f["level"] == "error"] == []
    assert len(change.plan) == 4 and {s["table"] for s in change.plan} == {"vouchers"}

    now = timezone.now()
    change = changes_services.save_change(
        engineer,
        change,
        emergency_plan="执行失败时由平台回退",
        rollback_plan="按前镜像一键回滚",
        window_start=now - timedelta(minutes=5),
        window_end=now + timedelta(hours=1),
    )
    change = changes_services.submit(engineer, change)
    with pytest.raises(Exception, match="审批|提出人"):  # the author never approves
        changes_services.decide(engineer, change, approve=True)
    change = changes_services.decide(approver, change, approve=True)
    changes_services.execute(engineer, change)
    change.refresh_from_db()
    assert change.status == ChangeRequest.Status.DONE, change.status

    after = read(conn)
    for key in (3, 9, 12):
        assert after[key] == at_backup[key]
    assert 999 not in after and after[6] == today[6]
    assert set(after) == (set(today) | {9, 12}) - {999}

    changes_services.rollback(engineer, change)
    change.refresh_from_db()
    assert change.status == ChangeRequest.Status.ROLLED_BACK
    assert read(conn) == today


def test_keyed_statements_on_one_table_must_not_share_a_row():
    rules = changes.Rules()
    sql = "UPDATE t SET a = 1 WHERE id = 5; DELETE FROM t WHERE id = 5"
    review = changes.analyse(sql, "postgres", rules=rules)
    assert not [
        f for f in review.findings if f.level == "error"
    ]  # keyed: decided against the primary key later
    for st in review.statements:
        st.pk = ["id"]
    found = changes._shared_tables(review.statements)
    assert len(found) == 1 and "主键 5 的行已由第 1 条语句修改" in found[0].message
    loose = changes.analyse(
        "UPDATE t SET a = 1 WHERE id = 5; UPDATE t SET a = 2 WHERE id > 7", "postgres", rules=rules
    )
    assert any("只能由一条语句修改" in f.message for f in loose.findings)
    partial = changes.analyse(
        "UPDATE t SET a = 1 WHERE k1 = 5; UPDATE t SET a = 2 WHERE k1 = 6", "postgres", rules=rules
    )
    for st in partial.statements:
        st.pk = ["k1", "k2"]
    assert all("完整主键" in f.message for f in changes._shared_tables(partial.statements))
