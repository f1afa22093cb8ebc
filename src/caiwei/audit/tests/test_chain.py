"""The audit chain: appended on every change, verified by the command, and every tampering is found."""

import pytest
from django.core.management import call_command
from django.db import connection

from caiwei.audit.chain import GENESIS, verify_rows
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.audit.verify import verify_chain
from caiwei.regions.models import Region

pytestmark = pytest.mark.django_db


def run_verify() -> tuple[int, str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("audit", "verify", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def raw(sql: str, params=()) -> None:
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql.format(table=table), params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture
def chain(regions):
    for i in range(5):
        record(AuditAction.ADMIN, object_type="test", object_id=str(i), detail={"n": i})
    return list(AuditEvent.objects.order_by("seq"))


def test_changes_are_recorded_with_before_and_after(regions):
    region = Region.objects.get(code="152501000")
    region.name = "二连浩特市（改）"
    region.save()
    event = AuditEvent.objects.filter(object_type="regions.region", action=AuditAction.UPDATE).first()
    assert event.before == {"name": "二连浩特市"}
    assert event.after == {"name": "二连浩特市（改）"}
    assert event.object_id == str(region.pk)
    created = AuditEvent.objects.filter(object_type="regions.region", action=AuditAction.CREATE).count()
    assert created == 5
    leaf = Region.objects.get(code="152522000")
    leaf_pk = leaf.pk
    leaf.delete()
    deleted = AuditEvent.objects.get(object_type="regions.region", action=AuditAction.DELETE)
    assert deleted.before["code"] == "152522000" and deleted.object_id == str(leaf_pk)


def test_intact_chain_verifies(chain):
    code, out, err = run_verify()
    assert code == 0, err
    assert f"共 {AuditEvent.objects.count()} 行" in out
    first = AuditEvent.objects.order_by("seq").first()
    assert first.seq == 1 and first.prev_hash == GENESIS


def test_edit_is_found_at_that_row(chain):
    target = chain[2]
    raw("UPDATE {table} SET actor = %s WHERE seq = %s", ["intruder", target.seq])
    code, _, err = run_verify()
    assert code == 1
    assert f"第 {target.seq} 行" in err and "改动" in err


def test_edit_of_json_detail_is_found(chain):
    target = chain[1]
    raw("UPDATE {table} SET detail = %s WHERE seq = %s", ['{"n": 99}', target.seq])
    _, broken = verify_chain()
    assert broken is not None and broken.seq == target.seq


def test_deletion_is_found_at_that_row(chain):
    target = chain[3]
    raw("DELETE FROM {table} WHERE seq = %s", [target.seq])
    code, _, err = run_verify()
    assert code == 1
    assert f"第 {target.seq} 行" in err and "删除" in err


def test_tail_deletion_is_found(chain):
    last = chain[-1]
    raw("DELETE FROM {table} WHERE seq = %s", [last.seq])
    _, broken = verify_chain()
    assert broken is not None and broken.seq == last.seq


def test_insertion_is_found_at_that_row(chain):
    # Shift the rows after seq 2 up by one and insert a forged row in the gap, copying a neighbour's hashes.
    raw("UPDATE {table} SET seq = seq + 1000 WHERE seq > 2")
    raw("UPDATE {table} SET seq = seq - 999 WHERE seq > 1000")
    src = chain[1]
    raw(
        "INSERT INTO {table} (seq, at, action, actor, actor_id, ip, request_id, source, object_type, object_id,"
        " object_repr, before, after, detail, prev_hash, hash) VALUES"
        " (%s, %s, 'admin', 'forger', NULL, NULL, '', '', 'test', 'x', '', NULL, NULL, '{{}}', %s, %s)",
        [3, src.at, src.hash, src.hash],
    )
    code, _, err = run_verify()
    assert code == 1 and "第 3 行" in err


def test_appended_row_beyond_head_is_found(chain):
    last = chain[-1]
    raw(
        "INSERT INTO {table} (seq, at, action, actor, actor_id, ip, request_id, source, object_type, object_id,"
        " object_repr, before, after, detail, prev_hash, hash) VALUES"
        " (%s, %s, 'admin', 'forger', NULL, NULL, '', '', 'test', 'x', '', NULL, NULL, '{{}}', %s, %s)",
        [last.seq + 1, last.at, last.hash, "0" * 64],
    )
    _, broken = verify_chain()
    assert broken is not None and broken.seq == last.seq + 1


def test_orm_refuses_to_change_or_delete(chain):
    event = chain[0]
    event.actor = "x"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(actor="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_database_trigger_refuses_update(chain):
    from django.db import transaction
    from django.db.utils import DatabaseError

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET actor = 'x' WHERE seq = 1")


def test_verify_rows_pure():
    key = b"k"
    from caiwei.audit.chain import row_hash

    rows, prev = [], GENESIS
    for seq in range(1, 4):
        row = {"seq": seq, "at": "2026-01-01T00:00:00.000000Z", "action": "admin", "prev_hash": prev}
        row["hash"] = row_hash(key, row)
        rows.append(row)
        prev = row["hash"]
    assert verify_rows(key, rows, head=(3, prev)) is None
    assert verify_rows(b"other key", rows).seq == 1
    assert verify_rows(key, rows[:2], head=(3, prev)).seq == 3


@pytest.mark.django_db(transaction=True)
def test_cli_exit_codes(regions):
    """`caiwei audit verify` as an operator runs it: exit 0 when intact, non-zero naming the row after an edit."""
    import os
    import subprocess
    import sys

    from caiwei.audit.keys import audit_key

    db = connection.settings_dict
    env = dict(os.environ)
    env |= {
        "DJANGO_SETTINGS_MODULE": "caiwei.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CAIWEI_AUDIT_KEY": audit_key().decode(),
    }
    if connection.vendor != "postgresql":
        pytest.skip("the subprocess reaches the test database over a URL")
    cmd = [sys.executable, "-m", "caiwei.cli", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "审计链完整" in ok.stdout
    raw("UPDATE {table} SET object_repr = %s WHERE seq = 3", ["篡改"])
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "第 3 行" in bad.stderr
