"""The backup engines with the real tools on SQLite, PostgreSQL (pg_dump 15) and MariaDB (mariadb-dump): a backup's
checksum is the file's and its row counts are the database's; a changed byte is refused; the range restore's diff
is exactly the rows changed since in the range, and the SQL generated from it brings those rows back; a drill
restores the whole backup and finds the counts recorded."""

from __future__ import annotations

import hashlib
import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.conftest import scratch_db
from caiwei.dataops import backup as engine
from caiwei.dataops import drill as drills
from caiwei.dataops import restore as restorer

SOURCE = scratch_db("bk_src")
PREFIX = scratch_db("bkx")[:40]
REGIONS = ("152501000", "152502000", "152503000")
# Text a dump must carry intact and a row counter must not be fooled by: quotes, parentheses, separators, escapes.
TRICKY = [
    "a'b",
    "(x),(y)",
    "),(",
    "back\\slash",
    "引号“中文”",
    "semi;colon",
    "",
    None,
    "tab\there",
    "'('",
    "50%",
]

metadata = sa.MetaData()
vouchers = sa.Table(
    "vouchers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("region", sa.String(12), nullable=False),
    sa.Column("payee", sa.String(100)),
    sa.Column("amount", sa.Numeric(18, 2)),
    sa.Column("paid_on", sa.Date),
    sa.Column("note", sa.Text),
)
agencies = sa.Table(
    "agencies",
    metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(100)),
)
COLUMNS = ["region", "payee", "amount", "paid_on", "note"]


def _server_url(kind: str) -> str:
    if kind == "postgresql":
        return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    return "mysql+pymysql://root@127.0.0.1:3306/"


def make_source(kind: str, tmp_path, name: str = SOURCE) -> engine.Conn:
    """An empty database ``name`` of ``kind`` on this machine (dropped and created again)."""
    if kind == "sqlite":
        path = tmp_path / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        return engine.Conn("sqlite", str(path))
    if kind == "postgresql":
        server = engine.Conn("postgresql", "postgres", "127.0.0.1", 5432, "postgres")
    else:
        server = engine.Conn("mysql", "", "127.0.0.1", 3306, "root")
    try:
        restorer.create_database(server, name)
    except engine.BackupError as exc:
        pytest.skip(f"数据库不可用：{exc}")
    return server.with_database(name)


def drop_source(conn: engine.Conn) -> None:
    if conn.dialect != "sqlite":
        server = conn.with_database("postgres" if conn.dialect == "postgresql" else "")
        restorer.drop_database(server, conn.database)


def row(i: int, rng: random.Random) -> dict:
    return {
        "id": i,
        "region": REGIONS[i % 3],
        "payee": f"收款人{i}",
        "amount": Decimal(rng.randrange(1, 10_000_000)) / 100,
        "paid_on": date(2026, 1 + i % 12, 1 + i % 28),
        "note": TRICKY[i % len(TRICKY)],
    }


def fill(conn: engine.Conn, n: int = 300, seed: int = 7) -> dict[int, dict]:
    rng = random.Random(seed)
    rows = [row(i, rng) for i in range(1, n + 1)]
    e = conn.engine()
    try:
        metadata.drop_all(e)
        metadata.create_all(e)
        with e.begin() as c:
            c.execute(vouchers.insert(), rows)
            c.execute(agencies.insert(), [{"code": f"A{i:03d}", "name": f"单位（{i}）'s"} for i in range(40)])
    finally:
        e.dispose()
    return {r["id"]: r for r in rows}


def read(conn: engine.Conn | sa.Engine, where=None) -> dict[int, tuple]:
    e = conn if isinstance(conn, sa.Engine) else conn.engine()
    try:
        with e.connect() as c:
            q = sa.select(vouchers)
            if where is not None:
                q = q.where(where)
            return {r.id: tuple(r[1:]) for r in c.execute(q)}
    finally:
        if not isinstance(conn, sa.Engine):
            e.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def source(request, tmp_path):
    conn = make_source(request.param, tmp_path)
    yield conn
    drop_source(conn)


def server_of(conn: engine.Conn) -> engine.Conn:
    return conn if conn.dialect == "sqlite" else conn.with_database(conn.database)


# --- backup ------------------------------------------------------------------------------------------------------


def test_backup_records_the_files_checksum_and_the_databases_counts(source, tmp_path):
    fill(source, 300)
    result = engine.backup(source, tmp_path / "b" / f"x{engine.SUFFIX[source.dialect]}")
    data = (tmp_path / "b" / f"x{engine.SUFFIX[source.dialect]}").read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)
    engine.verify(result.path, result.sha256)  # the file as written verifies
    assert result.counts == {"agencies": 40, "vouchers": 300}
    assert result.tables == ["agencies", "vouchers"] and result.tool_version
    # chosen tables only: the other table is neither counted nor in the file
    only = engine.backup(source, tmp_path / "c" / f"y{engine.SUFFIX[source.dialect]}", ["vouchers"])
    assert only.counts == {"vouchers": 300}
    scratch = restorer.restore_all(
        server_of(source),
        only.path,
        f"{PREFIX}_all1" if source.dialect != "sqlite" else str(tmp_path / "r.sqlite3"),
    )
    try:
        e = scratch.engine()
        with e.connect() as c:
            assert engine.list_tables(c, scratch.dialect) == ["vouchers"]
        e.dispose()
        assert read(scratch) == read(source)  # every value, the tricky texts included, came back as it was
    finally:
        restorer.drop_database(server_of(source), scratch.database)


def test_changed_byte_is_detected_and_refused(source, tmp_path):
    fill(source, 50)
    result = engine.backup(source, tmp_path / f"z{engine.SUFFIX[source.dialect]}")
    path = Path(result.path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    path.write_bytes(bytes(data))
    with pytest.raises(engine.ChecksumMismatch, match="校验失败"):
        engine.verify(result.path, result.sha256)
    outcome = drills.run_drill(
        server_of(source), result.path, result.sha256, result.counts, _scratch(source, tmp_path, "c")
    )
    assert not outcome.passed and "校验失败" in outcome.error
    assert [s.name for s in outcome.steps if not s.ok] == ["校验备份文件（SHA-256）"]


def _scratch(conn: engine.Conn, tmp_path, tag: str) -> str:
    return str(tmp_path / f"{tag}.sqlite3") if conn.dialect == "sqlite" else f"{PREFIX}_{tag}"


def test_unreachable_server_fails_with_a_message_and_leaves_no_file(tmp_path):
    dest = tmp_path / "x.dump"
    for conn in (
        engine.Conn("postgresql", "nothing", "127.0.0.1", 1, "postgres"),
        engine.Conn("mysql", "nothing", "127.0.0.1", 1, "root", "wrong"),
    ):
        with pytest.raises(engine.BackupError, match="连接数据库失败"):
            engine.backup(conn, dest)
        assert not dest.exists()


def test_mariadb_wrong_password_fails(tmp_path):
    conn = make_source("mariadb", tmp_path)
    try:
        fill(conn, 5)
        bad = engine.Conn("mysql", conn.database, "127.0.0.1", 3306, "caiwei_nobody", "wrong-password")
        with pytest.raises(engine.BackupError, match="连接数据库失败"):
            engine.backup(bad, tmp_path / "x.sql")
    finally:
        drop_source(conn)


def test_insert_row_counter_skips_strings():
    one_line = b"INSERT INTO `t` VALUES (1,'a''b','(x),(y)'),(2,'back\\\\',NULL),(3,'it\\'s (fine)',0x28);\n"
    quick = [b"INSERT INTO `u``v` VALUES\n", b"(1,'),('),\n", b"(2,'(;');\n", b"UNLOCK TABLES;\n"]
    counts: dict[str, int] = {}
    counter = engine.InsertCounter(counts)
    for line in [one_line, *quick, b"INSERT INTO `t` VALUES (4,'x');\n"]:
        counter.feed(line)
    assert counts == {"t": 4, "u`v": 2}


# --- range restore -----------------------------------------------------------------------------------------------


def run_as_written(c: sa.Connection, statements: list[str]) -> None:
    """Run SQL text as a person would paste it: through the driver's cursor, with no parameters."""
    cursor = c.connection.dbapi_connection.cursor()
    try:
        for sql in statements:
            cursor.execute(sql)
    finally:
        cursor.close()


def mutate(conn: engine.Conn, rng: random.Random, n: int) -> None:
    """Random updates, deletes and inserts over the whole table (inside and outside any range)."""
    e = conn.engine()
    try:
        with e.begin() as c:
            for _ in range(12):
                i = rng.randrange(1, n + 1)
                values = {rng.choice(["payee", "amount", "note", "paid_on"]): None}
                if "amount" in values:
                    values["amount"] = Decimal(rng.randrange(1, 1000)) / 100
                elif "payee" in values:
                    values["payee"] = f"改{rng.randrange(1000)}"
                c.execute(vouchers.update().where(vouchers.c.id == i).values(**values))
            for _ in range(4):
                c.execute(vouchers.delete().where(vouchers.c.id == rng.randrange(1, n + 1)))
            for j in range(4):
                c.execute(vouchers.insert().values(**row(n + 1 + j + rng.randrange(100) * 10, rng)))
    finally:
        e.dispose()


@pytest.mark.parametrize("seed", [1, 2])
def test_range_restore_shows_exactly_the_rows_changed_in_range_and_its_sql_brings_them_back(
    source, tmp_path, seed
):
    n = 200
    fill(source, n, seed)
    result = engine.backup(source, tmp_path / f"r{engine.SUFFIX[source.dialect]}")
    before = read(source)
    mutate(source, random.Random(seed), n)
    after = read(source)
    region = REGIONS[seed % 3]
    where = restorer.check_condition(f"region = '{region}'", "vouchers", ["id", *COLUMNS], source.dialect)
    server = server_of(source)
    staging = restorer.restore_table(server, result.path, "vouchers", f"{PREFIX}_stage_t")
    stage_engine, live = staging.engine(read_only=staging.dialect == "sqlite"), source.engine()
    try:
        # staging holds the table alone (PostgreSQL, MariaDB) with its primary key
        with stage_engine.connect() as c:
            assert engine.list_tables(c, staging.dialect) == (
                ["agencies", "vouchers"] if staging.dialect == "sqlite" else ["vouchers"]
            )
        assert restorer.table_columns(stage_engine, "vouchers")[1] == ["id"]
        diff = restorer.range_diff(stage_engine, live, "vouchers", where)
        # expected, from the two snapshots read in Python: rows of the region on either side
        in_before = {k for k, v in before.items() if v[0] == region}
        in_after = {k for k, v in after.items() if v[0] == region}
        changed = {k for k in in_before & in_after if before[k] != after[k]}
        assert {k[0] for k in diff.only_left} == in_before - in_after
        assert {k[0] for k in diff.only_right} == in_after - in_before
        assert {c.key[0] for c in diff.changed} == changed
        for c in diff.changed:
            differing = {
                COLUMNS[i]
                for i, (a, b) in enumerate(zip(before[c.key[0]], after[c.key[0]], strict=True))
                if a != b
            }
            assert set(c.columns) == differing
        rows, _ = restorer.diff_rows(diff)
        picks = [{"kind": r["kind"], "key": r["key"], "columns": list(r["columns"])} for r in rows]
        assert len(picks) == len(in_before ^ in_after) + len(changed) > 0
        statements = restorer.restore_statements(stage_engine, live, "vouchers", ["id"], picks)
        with live.connect() as c:
            tx = c.begin()
            run_as_written(c, statements)
            now = {r.id: tuple(r[1:]) for r in c.execute(sa.select(vouchers))}
            tx.rollback()
        # the keys chosen are the backup's again; every other row is today's
        for k in in_before | in_after:
            assert now.get(k) == before.get(k), k
        for k in set(after) - in_before - in_after:
            assert now[k] == after[k]
        assert read(source) == after  # rolled back
    finally:
        stage_engine.dispose()
        live.dispose()
        if staging.dialect != "sqlite":
            restorer.drop_database(server, staging.database)


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("id IN (SELECT id FROM agencies)", "子查询"),
        ("pg_sleep(5) IS NULL", "不允许的函数"),
        ("nothing = 1", "没有列"),
        ("agencies.code = 'x'", "只能引用表"),
        ("1=1; DELETE FROM vouchers", "分号"),
        ("DELETE FROM vouchers", "不能含 DELETE"),
        ("amount", "应为判断"),
        ("id = :x", "占位符"),
    ],
)
def test_condition_must_be_a_read_only_predicate_over_the_table(condition, problem):
    with pytest.raises(engine.BackupError, match=problem):
        restorer.check_condition(condition, "vouchers", ["id", *COLUMNS], "postgresql")


def test_condition_is_written_back_in_the_dialect():
    sql = restorer.check_condition(
        "vouchers.amount >= 100 AND region IN ('1', '2')", "vouchers", ["id", *COLUMNS], "mysql"
    )
    assert sql == "amount >= 100 AND region IN ('1', '2')"


def test_mysql_section_takes_one_table(tmp_path):
    conn = make_source("mariadb", tmp_path)
    try:
        fill(conn, 20)
        result = engine.backup(conn, tmp_path / "m.sql")
        part = tmp_path / "part.sql"
        assert restorer.mysql_section(result.path, "agencies", str(part))
        text = part.read_text(encoding="utf-8")
        assert "CREATE TABLE `agencies`" in text and "`vouchers`" not in text
        assert not restorer.mysql_section(result.path, "nothing", str(tmp_path / "none.sql"))
    finally:
        drop_source(conn)


# --- drill and retention ----------------------------------------------------------------------------------------


def test_drill_restores_and_finds_the_recorded_counts(source, tmp_path):
    fill(source, 120)
    result = engine.backup(source, tmp_path / f"d{engine.SUFFIX[source.dialect]}")
    fill(source, 10)  # today's database has moved on; the drill restores the backup, not today
    outcome = drills.run_drill(
        server_of(source), result.path, result.sha256, result.counts, _scratch(source, tmp_path, "dr")
    )
    assert outcome.passed, outcome.error
    assert {c["table"]: c["restored"] for c in outcome.counts} == {"agencies": 40, "vouchers": 120}
    assert outcome.rto_seconds > 0 and outcome.steps[-1].name == "删除临时库"
    wrong = dict(result.counts, vouchers=121)  # a count recorded otherwise is caught
    outcome = drills.run_drill(
        server_of(source), result.path, result.sha256, wrong, _scratch(source, tmp_path, "e")
    )
    assert not outcome.passed and [c["table"] for c in outcome.counts if not c["ok"]] == ["vouchers"]


def test_retention_keeps_the_newest_and_drops_by_count_and_age():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 27, tzinfo=UTC)
    items = [(i, now - timedelta(days=i)) for i in range(1, 11)]
    assert engine.to_prune(items, keep=3, days=None, now=now) == [4, 5, 6, 7, 8, 9, 10]
    assert engine.to_prune(items, keep=None, days=5, now=now) == [6, 7, 8, 9, 10]
    assert engine.to_prune([(1, now - timedelta(days=99))], keep=1, days=1, now=now) == []  # the newest stays


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=12)), min_size=1, max_size=4),
        max_size=6,
    )
)
def test_row_counter_counts_every_row_whatever_the_text(rows):
    """Rows as mariadb-dump writes them (strings escaped as MySQL does), one line or one row a line: all counted."""
    from pymysql.converters import escape_string

    def literal(v):
        if v is None:
            return "NULL"
        return str(v) if isinstance(v, int) else "'" + escape_string(v) + "'"

    tuples = ["(" + ",".join(literal(v) for v in r) + ")" for r in rows]
    if not tuples:
        return
    one_line = ("INSERT INTO `t` VALUES " + ",".join(tuples) + ";\n").encode()
    quick = [b"INSERT INTO `q` VALUES\n"] + [
        (t + (";" if n == len(tuples) - 1 else ",") + "\n").encode() for n, t in enumerate(tuples)
    ]
    counts: dict[str, int] = {}
    counter = engine.InsertCounter(counts)
    for line in [one_line, *quick]:
        counter.feed(line)
    assert counts == {"t": len(rows), "q": len(rows)}
