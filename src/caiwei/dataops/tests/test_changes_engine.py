"""The data change engine on real databases (SQLite, PostgreSQL, MariaDB): the review rules, execution with before-
and after-images, the count check, rollback with conflicts, the marker's fence; and the image encoding."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.dataops import changes as eng

from .changes_support import MemoryStore, make_accounts, rows_of, server_url

# --- review rules (no connection) ---------------------------------------------------------------------------------

REFUSED = {
    "SELECT * FROM chg_account": "只允许",
    "UPDATE chg_account SET status = 'x'": "必须带 WHERE",
    "DELETE FROM chg_account": "必须带 WHERE",
    "UPDATE chg_account SET status = 'x' WHERE 1 = 1": "不含任何列",
    "UPDATE chg_account SET status = 'x' FROM other WHERE chg_account.id = other.id": "只能改一张表",
    "DELETE FROM chg_account USING other WHERE chg_account.id = other.id": "只能改一张表",
    "WITH d AS (DELETE FROM other RETURNING id) UPDATE chg_account SET status = 'x' WHERE id IN (SELECT id FROM d)": "写操作",
    "UPDATE chg_account SET amount = nextval('s') WHERE id = 1": "副作用",
    "UPDATE sys_user SET user_name = 'x' WHERE user_id = '1'": "禁止修改",
    "UPDATE caiwei_change_marker SET state = 'committed' WHERE token = 'x'": "禁止修改",
    "INSERT INTO chg_account SELECT * FROM other": "须写明列名",
    "INSERT INTO chg_account (id, payee) SELECT id, payee FROM other": "VALUES",
    "INSERT INTO chg_account (id, payee, amount, status) VALUES (1, 'a', 1, 'paid') ON CONFLICT DO NOTHING": "ON CONFLICT",
    "ALTER TABLE chg_account ADD COLUMN note VARCHAR(10)": "须在变更单上声明",
    "TRUNCATE chg_account": "DROP、TRUNCATE",
    "UPDATE chg_account SET status = 'x' WHERE id = 1 RETURNING *": "RETURNING",
    "UPDATE chg_account SET status = 'a' WHERE id > 1; UPDATE chg_account SET status = 'b' WHERE id = 2": "同一张表",
    "VACUUM": "只允许",
}


@pytest.mark.parametrize("sql", list(REFUSED))
def test_each_rule_refuses_what_it_names(sql):
    review = eng.analyse(sql, "postgres", rules=eng.Rules())
    assert not review.ok
    assert any(REFUSED[sql] in m for m in review.errors), review.errors


def test_mysql_specific_refusals():
    for sql, word in (
        ("UPDATE chg_account a JOIN other b ON a.id = b.id SET a.status = 'x' WHERE b.k = 1", "一张表"),
        ("DELETE FROM chg_account WHERE status = 'hold' LIMIT 5", "LIMIT"),
        ("ALTER TABLE chg_account ADD COLUMN note VARCHAR(10)", "隐式提交"),
    ):
        review = eng.analyse(sql, "mysql", rules=eng.Rules(), declared_ddl=True)
        assert any(word in m for m in review.errors), (sql, review.errors)


def test_accepted_statements_and_what_they_will_run():
    review = eng.analyse(
        "/* 说明 */ UPDATE chg_account AS p SET status = 'paid' -- 注释\n WHERE p.id IN (SELECT id FROM other) AND p.status = 'hold';"
        " DELETE FROM other WHERE k = 'x%'",
        "postgres",
        rules=eng.Rules(),
    )
    assert review.ok, review.errors
    update, delete = review.statements
    assert update.kind == "update" and update.table == "chg_account" and update.set_columns == ["status"]
    assert "/*" not in update.sql and "--" not in update.sql  # comments never reach the database
    assert update.image_sql.endswith("FOR UPDATE") and "p.status = 'hold'" in update.image_sql
    assert delete.kind == "delete" and "'x%'" in delete.sql


@given(
    name=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    prefix=st.sampled_from(["sys_user", "sys_role", "sys_log", "audit_"]),
)
@settings(max_examples=60, deadline=None)
def test_forbidden_patterns_hold_for_any_table_name(name, prefix):
    table = prefix + name
    rules = eng.Rules()
    review = eng.analyse(f"DELETE FROM {table} WHERE id = 1", "postgres", rules=rules)
    assert rules.forbids(table) and not review.ok
    ddl = eng.analyse(f"CREATE INDEX ix_{name} ON {table} (id)", "postgres", rules=rules, declared_ddl=True)
    assert not ddl.ok


def test_guided_fix_generates_the_update():
    sql = eng.guided_fix_sql("chg_account", "status", "paid", ["id"], [[3], [7]], "postgres")
    assert sql == "UPDATE chg_account SET status = 'paid' WHERE id IN (3, 7)"
    composite = eng.guided_fix_sql("t", "memo", None, ["a", "b"], [["x", 1]], "mysql")
    assert composite == "UPDATE t SET memo = NULL WHERE (a, b) IN (('x', 1))"
    with pytest.raises(eng.ChangeError, match="主键列"):
        eng.guided_fix_sql("t", "id", 1, ["id"], [[1]], "postgres")
    with pytest.raises(eng.ChangeError, match="第 1 个主键应有 2 个值"):
        eng.guided_fix_sql("t", "memo", 1, ["a", "b"], [[1]], "postgres")
    injected = eng.guided_fix_sql("t", "memo", "x'; DROP TABLE t; --", ["id"], [["1' OR '1'='1"]], "postgres")
    assert eng.analyse(
        injected, "postgres", rules=eng.Rules()
    ).ok  # quoted as values: one UPDATE, nothing else


# --- images -------------------------------------------------------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.text(max_size=20),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**12), max_value=10**12),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.binary(max_size=16),
    st.uuids(),
    st.timedeltas(min_value=dt.timedelta(days=-999), max_value=dt.timedelta(days=999)),
    st.booleans(),
)


@given(st.lists(st.tuples(VALUES, VALUES, VALUES), max_size=30))
@settings(max_examples=150, deadline=None)
def test_image_chunks_round_trip_every_value_exactly(rows):
    columns, back = eng.decode_chunk(eng.encode_chunk(["a", "b", "c"], rows))
    assert columns == ["a", "b", "c"]
    assert back == [tuple(r) for r in rows]
    assert [tuple(type(v) for v in r) for r in back] == [tuple(type(v) for v in r) for r in rows]


# --- on the databases ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def target(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('chg') / 'target.sqlite3'}"
    else:
        url = server_url(request.param)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def _run(target, sql, *, expected=None, token=None):
    review = eng.review(sql, target)
    assert review.ok, review.errors
    store = MemoryStore()
    outcome = eng.execute(
        target,
        review.statements,
        store,
        token=token or uuid.uuid4().hex,
        change_ref="t",
        expected=expected if expected is not None else [s.estimated for s in review.statements],
        chunk_rows=7,
    )
    return review, store, outcome


def test_review_counts_rows_by_the_same_predicate_and_needs_a_primary_key(target):
    make_accounts(target)
    review = eng.review("UPDATE chg_account SET status = 'paid' WHERE status = 'hold'", target)
    assert review.ok and review.estimated_rows == 20 and review.statements[0].pk == ["id"]
    assert not eng.review("DELETE FROM chg_account WHERE id > 0", target, rules=eng.Rules(max_rows=150)).ok
    assert any("没有表" in m for m in eng.review("DELETE FROM nowhere WHERE id = 1", target).errors)
    assert any(
        "不能修改主键" in m for m in eng.review("UPDATE chg_account SET id = 9 WHERE id = 1", target).errors
    )
    with target.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS chg_nopk")
        conn.exec_driver_sql("CREATE TABLE chg_nopk (a INTEGER, b INTEGER)")
    assert any("没有主键" in m for m in eng.review("UPDATE chg_nopk SET b = 1 WHERE a = 1", target).errors)
    ins = eng.review("INSERT INTO chg_account (id, payee, amount, status) VALUES (5, 'x', 1, 'paid')", target)
    assert any("已有 1 个" in m for m in ins.errors)


def test_update_keeps_exact_before_and_after_images_and_rolls_back(target):
    make_accounts(target)
    before = rows_of(target)
    review, store, outcome = _run(
        target, "UPDATE chg_account SET status = 'paid', amount = amount + 1 WHERE status = 'hold'"
    )
    assert outcome.state == "applied" and outcome.rows == 20
    assert store.names[:3] == ["begin", "connect", "image"] and store.names[-2:] == ["commit", "committed"]
    assert store.durable_at is not None and store.names[store.durable_at] == "commit"  # images durable first
    assert len(store.chunks[(0, "before")]) == 3  # 20 rows in chunks of 7
    st_ = review.statements[0]
    _, images = eng.load_images(store.source, st_, "before")
    assert {k[0]: v for k, v in images.items()} == {i: r for i, r in before.items() if r[5] == "hold"}
    after = rows_of(target)
    _, after_images = eng.load_images(store.source, st_, "after")
    assert {k[0]: v for k, v in after_images.items()} == {k[0]: after[k[0]] for k in images}
    assert eng.verify(target, review.statements, store.source)["differ"] == 0
    rb = MemoryStore()
    result = eng.rollback(target, review.statements, store.source, rb, token=uuid.uuid4().hex, change_ref="t")
    assert result.state == "applied" and result.rows == 20
    assert rows_of(target) == before


def test_delete_rolls_back_by_inserting_and_insert_by_deleting(target):
    make_accounts(target)
    before = rows_of(target)
    review, store, outcome = _run(target, "DELETE FROM chg_account WHERE id BETWEEN 11 AND 15")
    assert (
        outcome.state == "applied"
        and outcome.rows == 5
        and set(before) - set(rows_of(target)) == set(range(11, 16))
    )
    assert (
        eng.rollback(
            target, review.statements, store.source, MemoryStore(), token=uuid.uuid4().hex, change_ref="t"
        ).state
        == "applied"
    )
    assert rows_of(target) == before
    review, store, outcome = _run(
        target,
        "INSERT INTO chg_account (id, payee, amount, status, pay_date) VALUES (901, '新增', 10.5, 'paid', '2026-03-01'), (902, '新增', -1, 'hold', NULL)",
    )
    assert outcome.state == "applied" and outcome.rows == 2 and {901, 902} <= set(rows_of(target))
    _, after_images = eng.load_images(store.source, review.statements[0], "after")
    assert after_images[(901,)][3] == Decimal("10.50")
    assert (
        eng.rollback(
            target, review.statements, store.source, MemoryStore(), token=uuid.uuid4().hex, change_ref="t"
        ).state
        == "applied"
    )
    assert rows_of(target) == before


def test_count_different_from_the_approved_estimate_reverts_everything(target):
    make_accounts(target)
    before = rows_of(target)
    review, store, outcome = _run(
        target, "UPDATE chg_account SET status = 'x' WHERE status = 'hold'", expected=[19]
    )
    assert outcome.state == "reverted" and "审批时估计影响 19 行" in outcome.message
    assert rows_of(target) == before
    assert "commit" not in store.names and store.names[-1] == "reverted"


def test_rollback_never_overwrites_a_row_changed_since(target):
    make_accounts(target)
    before = rows_of(target)
    review, store, outcome = _run(target, "UPDATE chg_account SET status = 'done' WHERE id <= 10")
    assert outcome.state == "applied"
    with target.begin() as conn:
        conn.exec_driver_sql("UPDATE chg_account SET payee = '他人改过' WHERE id = 3")
        conn.exec_driver_sql("DELETE FROM chg_account WHERE id = 4")
    changed = rows_of(target)
    conflicts = eng.preview_rollback(target, review.statements, store.source)
    assert sorted(c["key"][0] for c in conflicts) == [3, 4]
    assert any(d == "payee" for c in conflicts for d in c["diff"])
    refused = eng.rollback(
        target, review.statements, store.source, MemoryStore(), token=uuid.uuid4().hex, change_ref="t"
    )
    assert refused.state == "refused" and len(refused.conflicts) == 2
    assert rows_of(target) == changed  # nothing touched
    done = eng.rollback(
        target,
        review.statements,
        store.source,
        MemoryStore(),
        token=uuid.uuid4().hex,
        change_ref="t",
        skip_conflicts=True,
    )
    assert done.state == "applied" and done.rows == 8
    now = rows_of(target)
    assert now[3] == changed[3] and 4 not in now  # the conflicting rows stay as the other person left them
    assert all(now[i] == before[i] for i in range(1, 11) if i not in (3, 4))


def test_the_fence_decides_and_a_fenced_attempt_can_never_commit(target):
    make_accounts(target)
    before = rows_of(target)
    token = uuid.uuid4().hex
    assert (
        eng.fence(target, token, "t", "execute") == "not_committed"
    )  # recovery ran first (the process died early)
    review, store, outcome = _run(target, "UPDATE chg_account SET status = 'x' WHERE id = 1", token=token)
    assert outcome.state == "failed" and "未提交" in outcome.message
    assert rows_of(target) == before
    assert eng.fence(target, token, "t", "execute") == "not_committed"  # asked again: the same answer
    token = uuid.uuid4().hex
    _, _, outcome = _run(target, "UPDATE chg_account SET status = 'x' WHERE id = 2", token=token)
    assert outcome.state == "applied"
    assert eng.fence(target, token, "t", "execute") == "committed"


def test_database_error_rolls_back_the_whole_change(target):
    make_accounts(target)
    before = rows_of(target)
    review = eng.review("UPDATE chg_account SET status = NULL WHERE id = 1", target)
    outcome = eng.execute(
        target, review.statements, MemoryStore(), token=uuid.uuid4().hex, change_ref="t", expected=[1]
    )
    assert outcome.state == "failed" and "目标库未改动" in outcome.message
    assert rows_of(target) == before


# --- PostgreSQL: images travel as COPY text; read back they must be exactly what a SELECT gives ---------------------

TEXTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@pytest.fixture(scope="module")
def pg():
    engine = sa.create_engine(server_url("postgresql"), poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@given(texts=st.lists(TEXTS, min_size=1, max_size=6), blob=st.binary(max_size=12))
@settings(max_examples=25, deadline=None)
def test_pg_copy_images_equal_what_a_select_returns(pg, texts, blob):
    with pg.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS chg_types")
        conn.exec_driver_sql(
            "CREATE TABLE chg_types (id INTEGER PRIMARY KEY, t TEXT, b BYTEA, ts TIMESTAMPTZ, j JSONB, n NUMERIC(12, 3), "
            "u UUID, f BOOLEAN, d DATE, r DOUBLE PRECISION, a INTEGER[], flag TEXT)"
        )
        for i, text in enumerate(texts):
            conn.exec_driver_sql(
                "INSERT INTO chg_types VALUES (%s, %s, %s, '2026-03-01 10:00:00+08', %s, -12.5, "
                "'6f1e6a40-5b0c-4bb5-9a53-3b1d2b7f0a11', true, '2026-02-28', 0.1, ARRAY[1, NULL, 3], 'x')",
                (i, text if i % 2 == 0 else None, blob, '{"k": "值\\t"}'),
            )
    with pg.connect() as conn:
        before = {r[0]: tuple(r) for r in conn.exec_driver_sql("SELECT * FROM chg_types")}
    review = eng.review("UPDATE chg_types SET flag = 'y' WHERE flag = 'x'", pg)
    store = MemoryStore()
    outcome = eng.execute(
        pg, review.statements, store, token=uuid.uuid4().hex, change_ref="t", expected=[len(texts)]
    )
    assert outcome.state == "applied", outcome.message
    _, images = eng.load_images(store.source, review.statements[0], "before")
    assert {k[0]: v for k, v in images.items()} == before
    with pg.connect() as conn:
        now = {r[0]: tuple(r) for r in conn.exec_driver_sql("SELECT * FROM chg_types")}
    _, after = eng.load_images(store.source, review.statements[0], "after")
    assert {k[0]: v for k, v in after.items()} == now
    assert (
        eng.rollback(
            pg, review.statements, store.source, MemoryStore(), token=uuid.uuid4().hex, change_ref="t"
        ).state
        == "applied"
    )
    with pg.connect() as conn:
        assert {r[0]: tuple(r) for r in conn.exec_driver_sql("SELECT * FROM chg_types")} == before


def test_int_runs_cover_exactly_the_keys():
    assert eng._int_runs([(5,), (1,), (2,), (3,), (9,), (10,), (2,)]) == [(1, 3), (5, 5), (9, 10)]
    assert eng._int_runs([("a",)]) is None and eng._int_runs([(1, 2)]) is None and eng._int_runs([]) is None
    assert eng._int_runs([(True,)]) is None
