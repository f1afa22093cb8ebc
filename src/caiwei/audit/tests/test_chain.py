"""The audit chain: appended on every change, verified by the command, and every tampering is found.

Runs on PostgreSQL and on SQLite (``DATABASE_URL=sqlite:////tmp/x.sqlite3``); tampering goes through raw SQL with
the append-only triggers out of the way, as an intruder holding the database would do it.
"""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from caiwei.audit.chain import GENESIS, head_mac, verify_rows
from caiwei.audit.keys import audit_key
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction, AuditEvent, AuditHead
from caiwei.audit.seals import seal
from caiwei.audit.verify import verify_chain
from caiwei.regions.models import Region

from .conftest import head_values, raw, set_head

pytestmark = pytest.mark.django_db

INSERT = (
    "INSERT INTO {table} (seq, at, action, actor, actor_id, ip, request_id, source, object_type, object_id,"
    " object_repr, before, after, detail, prev_hash, hash) VALUES"
    " (%s, %s, 'admin', 'forger', NULL, NULL, '', '', 'test', 'x', '', NULL, NULL, '{{}}', %s, %s)"
)


def run_verify(*args) -> tuple[int, str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("audit", "verify", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def add(n: int) -> None:
    for i in range(n):
        record(AuditAction.ADMIN, object_type="test", object_id=str(i), detail={"n": i})


@pytest.fixture
def chain(regions):
    add(5)
    return list(AuditEvent.objects.order_by("seq"))


@pytest.fixture
def sealed(regions):
    """A chain sealed at its last row, with the genuine head it had three rows earlier (for replaying)."""
    add(3)
    older_head = head_values()
    add(3)
    rows = list(AuditEvent.objects.order_by("seq"))
    assert seal() is not None
    return rows, older_head


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


def test_head_is_keyed(chain):
    seq, hash_, mac = head_values()
    last = AuditEvent.objects.order_by("-seq").first()
    assert (seq, hash_) == (last.seq, last.hash)
    assert mac == head_mac(audit_key(), seq, hash_) and mac != head_mac(b"other key", seq, hash_)


# --- edits, deletions, insertions, reordering -----------------------------------------------------------------


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


def test_insertion_is_found_at_that_row(chain):
    # Shift the rows after seq 2 up by one and insert a forged row in the gap, copying a neighbour's hashes.
    raw("UPDATE {table} SET seq = seq + 1000 WHERE seq > 2")
    raw("UPDATE {table} SET seq = seq - 999 WHERE seq > 1000")
    src = chain[1]
    raw(INSERT, [3, src.at, src.hash, src.hash])
    code, _, err = run_verify()
    assert code == 1 and "第 3 行" in err


def test_appended_row_beyond_head_is_found(chain):
    last = chain[-1]
    raw(INSERT, [last.seq + 1, last.at, last.hash, "0" * 64])
    _, broken = verify_chain()
    assert broken is not None and broken.seq == last.seq + 1


def test_reorder_is_found(chain):
    """Two rows swap places (their seq exchanged): the first one out of place no longer links."""
    a, b = chain[1].seq, chain[2].seq
    raw("UPDATE {table} SET seq = -1 WHERE seq = %s", [a])
    raw("UPDATE {table} SET seq = %s WHERE seq = %s", [a, b])
    raw("UPDATE {table} SET seq = %s WHERE seq = -1", [b])
    code, _, err = run_verify()
    assert code == 1 and f"第 {a} 行" in err and "调换顺序" in err


# --- truncation: the tail, the head, down to nothing --------------------------------------------------------


def test_tail_deletion_is_found(chain):
    last = chain[-1]
    raw("DELETE FROM {table} WHERE seq = %s", [last.seq])
    _, broken = verify_chain()
    assert broken is not None and broken.seq == last.seq


def test_tail_deletion_with_head_rewound_is_found_by_the_head_key(chain):
    """No seal needed: the head set back onto the last remaining row no longer carries a valid MAC."""
    keep = chain[2]
    raw("DELETE FROM {table} WHERE seq > %s", [keep.seq])
    _, _, mac = head_values()
    set_head(keep.seq, keep.hash, mac)
    code, _, err = run_verify()
    assert code == 1 and f"第 {keep.seq + 1} 行" in err and "链头" in err and "校验码不符" in err
    set_head(keep.seq, keep.hash, "0" * 64)
    assert run_verify()[0] == 1


def test_tail_deletion_with_replayed_genuine_head_is_found_by_the_seal(sealed):
    """The head put back to a value it really had (valid MAC): only the seal outside the database knows better."""
    rows, (old_seq, old_hash, old_mac) = sealed
    raw("DELETE FROM {table} WHERE seq > %s", [old_seq])
    set_head(old_seq, old_hash, old_mac)
    code, _, err = run_verify()
    assert code == 1
    assert f"记录到第 {rows[-1].seq} 行，库中只有 {old_seq} 行：尾部被截断" in err
    assert f"第 {old_seq + 1} 行" in err


def test_replayed_head_then_new_rows_is_found_by_the_seal(sealed):
    """Truncate, replay the old head, then let the application append again: the sealed row was replaced."""
    rows, (old_seq, old_hash, old_mac) = sealed
    raw("DELETE FROM {table} WHERE seq > %s", [old_seq])
    set_head(old_seq, old_hash, old_mac)
    add(len(rows) - old_seq + 2)
    assert AuditEvent.objects.count() > len(rows)
    code, _, err = run_verify()
    assert code == 1 and f"第 {rows[-1].seq} 行与" in err and "封存点" in err and "不符" in err


@pytest.mark.parametrize("head", ["deleted", "replayed", "rewritten"])
def test_truncation_to_first_rows_is_found(sealed, head):
    rows, (old_seq, old_hash, old_mac) = sealed
    keep = 2
    raw("DELETE FROM {table} WHERE seq > %s", [keep])
    if head == "deleted":
        raw("DELETE FROM {head}")
    elif head == "replayed":
        # The genuine head of that older state (the MAC is over (seq, hash), so it is the value once signed).
        keep_row = rows[keep - 1]
        set_head(keep, keep_row.hash, head_mac(audit_key(), keep, keep_row.hash))
    else:
        set_head(keep, rows[keep - 1].hash, old_mac)
    code, _, err = run_verify()
    assert code == 1
    assert f"记录到第 {rows[-1].seq} 行，库中只有 {keep} 行：尾部被截断" in err
    if head == "deleted":
        assert "链头缺失" in err
    if head == "rewritten":
        assert "校验码不符" in err


def test_truncation_to_zero_is_found(sealed):
    rows, _ = sealed
    raw("DELETE FROM {table}")
    raw("DELETE FROM {head}")
    code, _, err = run_verify()
    assert code == 1
    assert f"记录到第 {rows[-1].seq} 行，库中已没有任何审计记录：尾部被截断" in err and "链头缺失" in err
    assert "第 1 行" in err


def test_truncation_to_zero_without_a_seal_is_found_by_the_missing_head(chain):
    raw("DELETE FROM {table}")
    raw("DELETE FROM {head}")
    code, _, err = run_verify()
    assert code == 1 and "链头缺失" in err


def test_rows_deleted_head_kept_is_found(chain):
    raw("DELETE FROM {table}")
    code, _, err = run_verify()
    assert code == 1 and f"链头记录到第 {chain[-1].seq} 行，但库中没有任何审计记录" in err


def test_head_deleted_over_rows_is_found(chain):
    raw("DELETE FROM {head}")
    code, _, err = run_verify()
    assert code == 1 and f"链头缺失（库中有 {len(chain)} 行记录）" in err


# --- the application keeps logging after the head was tampered with ------------------------------------------


def test_logging_after_head_deleted_leaves_a_break(chain):
    """The log never re-signs a missing head quietly: it appends a 审计链异常 row that verify reports."""
    raw("DELETE FROM {table} WHERE seq > 3")
    raw("DELETE FROM {head}")
    add(2)
    marker = AuditEvent.objects.get(action=AuditAction.CHAIN_BREAK)
    assert marker.seq == 4 and marker.detail["continued_after"] == 3
    code, _, err = run_verify()
    assert code == 1 and "第 4 行" in err and "链头缺失（库中有 3 行记录）" in err and "截断" in err


def test_logging_after_head_forged_leaves_a_break(chain):
    raw("DELETE FROM {table} WHERE seq > 3")
    set_head(3, chain[2].hash, "f" * 64)
    add(1)
    assert AuditEvent.objects.filter(action=AuditAction.CHAIN_BREAK, seq=4).exists()
    code, _, err = run_verify()
    assert code == 1 and "第 4 行" in err and "校验码不符" in err


def test_logging_after_head_pushed_ahead_keeps_the_gap(chain):
    """A forged head claiming more rows than exist: logging continues after the claim, the gap stays visible."""
    claimed = chain[-1].seq + 4
    set_head(claimed, "a" * 64, "b" * 64)
    add(1)
    assert AuditEvent.objects.filter(action=AuditAction.CHAIN_BREAK, seq=claimed + 1).exists()
    _, broken = verify_chain()
    assert broken is not None and broken.seq == len(chain) + 1 and "缺失" in broken.reason


# --- the database refuses, the ORM refuses -------------------------------------------------------------------


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
    with pytest.raises(PermissionError):
        AuditHead.objects.get(pk=1).delete()
    with pytest.raises(PermissionError):
        AuditHead.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditHead.objects.update(seq=1)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {table} SET actor = 'x' WHERE seq = 1",
        "DELETE FROM {table} WHERE seq = 5",
        "DELETE FROM {table}",
        "DELETE FROM {head}",
        "UPDATE {head} SET seq = 3, hash = (SELECT hash FROM {table} WHERE seq = 3)",  # rewind
        "UPDATE {head} SET mac = 'x'",  # rewrite in place
        "UPDATE {head} SET seq = 6, hash = 'forged'",  # forward, but onto no row
    ],
    ids=[
        "event-update",
        "event-delete",
        "event-delete-all",
        "head-delete",
        "head-rewind",
        "head-rewrite",
        "head-jump",
    ],
)
def test_database_triggers_refuse(chain, sql):
    """On PostgreSQL and on SQLite alike, the database itself refuses; a legitimate append still advances."""
    table, head = AuditEvent._meta.db_table, AuditHead._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.format(table=table, head=head))
    assert AuditEvent.objects.count() == len(chain) and head_values()[0] == chain[-1].seq
    add(1)
    assert head_values()[0] == chain[-1].seq + 1
    assert run_verify()[0] == 0


def test_verify_rows_pure():
    key = b"k"
    from caiwei.audit.chain import MISSING, Seal, row_hash

    rows, prev = [], GENESIS
    for seq in range(1, 4):
        row = {"seq": seq, "at": "2026-01-01T00:00:00.000000Z", "action": "admin", "prev_hash": prev}
        row["hash"] = row_hash(key, row)
        rows.append(row)
        prev = row["hash"]
    assert verify_rows(key, rows, head=(3, prev)) is None
    assert verify_rows(key, rows, head=(3, prev, head_mac(key, 3, prev))) is None
    assert verify_rows(key, rows, head=(3, prev, head_mac(b"other key", 3, prev))).seq == 4
    assert verify_rows(b"other key", rows).seq == 1
    assert verify_rows(key, rows[:2], head=(3, prev)).seq == 3
    assert verify_rows(key, rows, head=MISSING).seq == 4
    sealed = [Seal(1, 3, prev, "t", GENESIS)]
    assert verify_rows(key, rows, seals=sealed) is None
    assert verify_rows(key, rows[:1], seals=sealed).seq == 2
    assert verify_rows(key, [], seals=sealed).seq == 1
    assert verify_rows(key, rows[2:], start=(2, rows[1]["hash"]), head=(3, prev)) is None


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the subprocess reaches the test database over a URL"
)
@pytest.mark.django_db(transaction=True)
def test_cli_exit_codes(regions, seal_dir):
    """`caiwei audit verify` as an operator runs it: exit 0 when intact, non-zero naming the row after an edit."""
    import os
    import subprocess
    import sys

    db = connection.settings_dict
    env = dict(os.environ)
    env |= {
        "DJANGO_SETTINGS_MODULE": "caiwei.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CAIWEI_AUDIT_KEY": audit_key().decode(),
        "CAIWEI_AUDIT_SEAL_DIR": str(seal_dir),
    }
    cmd = [sys.executable, "-m", "caiwei.cli", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "审计链完整" in ok.stdout and "已写封存点" in ok.stdout
    assert (seal_dir / "seals.jsonl").exists()
    raw("UPDATE {table} SET object_repr = %s WHERE seq = 3", ["篡改"])
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "第 3 行" in bad.stderr
