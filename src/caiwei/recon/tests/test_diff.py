"""The cross-database table diff on real engines: random tables, random edits on either side; the diff must report
exactly the keys only on one side and the changed rows with exactly the changed columns, fetching few rows."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, oracle, postgresql

from caiwei.conftest import scratch_db
from caiwei.recon import cli
from caiwei.recon.diff import (
    OracleFlavor,
    Rendering,
    Segment,
    Side,
    Split,
    TableDiff,
    checksum_query,
    diff_tables,
    fetch_query,
    native_hash_reason,
    sample_query,
)
from caiwei.sandbox.tests.test_generator import engine_url

TABLE = "recon_prop"
# Separators of the canonical row text, quotes, percent, backslash, CJK, a 4-byte character, trailing spaces.
ALPHABET = "aAbzZ 09甲乙丙财政预算收款é😀|~:'\"%\\_-\t"
KEY_ALPHABET = "aAbZ 09甲乙财政😀|~-"

DATETIME6 = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def decimals(digits: int, places: int):
    bound = Decimal(10) ** digits - Decimal(1).scaleb(-places)
    return st.decimals(
        min_value=-bound, max_value=bound, places=places, allow_nan=False, allow_infinity=False
    )


# name → (type, values). Decimals keep to 14 significant digits: SQLite stores decimals as double (see the module's
# limits); floats are quarters, exact in binary on every engine.
COLUMNS = {
    "n_int": (sa.BigInteger, st.integers(-(2**62), 2**62)),
    "amt": (sa.Numeric(14, 2), decimals(12, 2)),
    "rate": (sa.Numeric(18, 4), decimals(10, 4)),
    "name": (sa.String(30), st.text(ALPHABET, max_size=12)),
    "memo": (sa.Text, st.text(ALPHABET, max_size=40)),
    "day": (sa.Date, st.dates(date(1970, 1, 1), date(2099, 12, 31))),
    "at": (DATETIME6, st.datetimes(datetime(1971, 1, 1), datetime(2099, 12, 31))),
    "flag": (sa.Boolean, st.booleans()),
    "ratio": (sa.Double, st.integers(-(4 * 10**6), 4 * 10**6).map(lambda i: i / 4)),
}

KEYS = {
    "int": [("id", sa.BigInteger, st.integers(-(10**6), 10**6) | st.integers(-(2**62), 2**62))],
    "str": [("code", sa.String(24), st.text(KEY_ALPHABET, min_size=1, max_size=8))],
    "composite": [
        ("region", sa.String(12), st.sampled_from(["152500000", "152502000", "甲", "a", "A", "a "])),
        ("seq", sa.Integer, st.integers(-50, 50)),
    ],
    "date": [
        ("pay_date", sa.Date, st.dates(date(2025, 12, 1), date(2026, 2, 28))),
        ("voucher_no", sa.String(10), st.text("0123456789甲", min_size=1, max_size=3)),
    ],
}

PAIRS = [
    ("sqlite", "sqlite"),
    ("postgresql", "postgresql"),
    ("mariadb", "mariadb"),
    ("postgresql", "mariadb"),
    ("sqlite", "postgresql"),
]


@pytest.fixture(scope="module", params=PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def engines(request, tmp_path_factory):
    left_kind, right_kind = request.param
    left = sa.create_engine(engine_url(left_kind, scratch_db("caiwei_recon_a"), tmp_path_factory))
    right = sa.create_engine(engine_url(right_kind, scratch_db("caiwei_recon_b"), tmp_path_factory))
    yield left, right
    for engine in (left, right):
        engine.dispose()


def make_table(keys, columns) -> sa.Table:
    # MariaDB: a binary no-pad collation, so that keys such as "a" / "A" / "a " can all be primary keys (the
    # default utf8mb4_general_ci has them equal); the diff orders keys by code point either way.
    table = sa.Table(
        TABLE,
        sa.MetaData(),
        *[sa.Column(name, type_, primary_key=True, autoincrement=False) for name, type_, _ in keys],
        *[sa.Column(name, COLUMNS[name][0]) for name in columns],
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    return table


def load(engine, table: sa.Table, rows: dict) -> None:
    table.drop(engine, checkfirst=True)
    table.create(engine)
    if rows:
        names = [c.name for c in table.columns]
        with engine.begin() as conn:
            conn.execute(table.insert(), [dict(zip(names, (*k, *v), strict=True)) for k, v in rows.items()])


@st.composite
def scenarios(draw):
    key_kind = draw(st.sampled_from(sorted(KEYS)))
    keys = KEYS[key_kind]
    columns = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=5, unique=True))
    key_strategy = st.tuples(*[s for _, _, s in keys])

    def values():
        return st.tuples(*[st.none() | COLUMNS[c][1] for c in columns])

    rows = draw(st.dictionaries(key_strategy, values(), max_size=60))
    sides = [dict(rows), dict(rows)]
    for _ in range(draw(st.integers(0, 6))):
        side = sides[draw(st.integers(0, 1))]
        op = draw(st.sampled_from(["insert", "delete", "update"]))
        if op == "insert" or not side:
            key = draw(key_strategy.filter(lambda k, side=side: k not in side))
            side[key] = draw(values())
        elif op == "delete":
            del side[draw(st.sampled_from(sorted(side)))]
        else:
            key = draw(st.sampled_from(sorted(side)))
            i = draw(st.integers(0, len(columns) - 1))
            row = list(side[key])
            row[i] = draw(st.none() | COLUMNS[columns[i]][1])
            side[key] = tuple(row)
    params = draw(
        st.fixed_dictionaries(
            {"threshold": st.sampled_from([1, 3, 10, 1000]), "factor": st.sampled_from([2, 3, 8])}
        )
    )
    params["max_buckets"] = params["factor"] * draw(st.sampled_from([1, 2, 4]))
    params["native_hash"] = draw(st.booleans())
    return keys, columns, sides[0], sides[1], params


def expected(columns, left: dict, right: dict):
    only_left = set(left) - set(right)
    only_right = set(right) - set(left)
    changed = {}
    for key in set(left) & set(right):
        cols = {c for c, a, b in zip(columns, left[key], right[key], strict=True) if a != b}
        if cols:
            changed[key] = cols
    return only_left, only_right, changed


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios())
def test_diff_reports_exactly_the_edits(engines, scenario):
    keys, columns, left_rows, right_rows, params = scenario
    left, right = engines
    table = make_table(keys, columns)
    load(left, table, left_rows)
    load(right, table, right_rows)

    result = diff_tables(left, right, TABLE, **params)
    # the native row hash only between two PostgreSQL databases (same server, same column types here)
    both_pg = left.dialect.name == right.dialect.name == "postgresql"
    assert result.stats.row_hash == ("native" if both_pg and params["native_hash"] else "md5")

    only_left, only_right, changed = expected(columns, left_rows, right_rows)
    assert set(result.only_left) == only_left
    assert set(result.only_right) == only_right
    assert {row.key: set(row.columns) for row in result.changed} == changed
    assert len(result.changed) == len(changed)
    assert result.identical == (not only_left and not only_right and not changed)
    assert (result.stats.rows_left, result.stats.rows_right) == (len(left_rows), len(right_rows))
    # NULL on one side is reported as None, a value as text
    for row in result.changed:
        for name, (lv, rv) in row.columns.items():
            i = columns.index(name)
            assert (lv is None) == (left_rows[row.key][i] is None)
            assert (rv is None) == (right_rows[row.key][i] is None)


# --- identical tables, few rows fetched ---------------------------------------------------------------------------


def big_rows(n: int, key_kind: str) -> dict:
    rows = {}
    for i in range(n):
        key = (i * 7 + 3,) if key_kind == "int" else (f"收款{i:06d}",)
        rows[key] = (
            Decimal(i * 37 % 100000) / 100,
            f"预算单位{i % 97}",
            date(2026, 1 + i % 12, 1 + i % 28),
            None if i % 5 == 0 else i % 2 == 0,
        )
    return rows


BIG_COLUMNS = ["amt", "name", "day", "flag"]


@pytest.mark.parametrize("key_kind", ["int", "str"])
def test_identical_and_few_rows_fetched(engines, key_kind):
    """20 000 rows; identical tables report nothing; 5 edits fetch at most 5 segments of `threshold` rows a side."""
    left, right = engines
    n, threshold = 20000, 100
    keys = KEYS["int"] if key_kind == "int" else KEYS["str"]
    table = make_table(keys, BIG_COLUMNS)
    rows = big_rows(n, key_kind)
    load(left, table, rows)
    load(right, table, rows)

    same = diff_tables(left, right, TABLE, threshold=threshold)
    assert same.identical and same.changed == [] and same.only_left == [] and same.only_right == []
    assert (same.stats.rows_left, same.stats.rows_right) == (n, n)
    assert same.stats.fetched_left == same.stats.fetched_right == 0

    edited = dict(rows)
    ordered = sorted(rows)
    del edited[ordered[10]]
    edited[ordered[5000]] = (Decimal("0.01"), *rows[ordered[5000]][1:])
    edited[ordered[12000]] = (
        *rows[ordered[12000]][:3],
        None if rows[ordered[12000]][3] is not None else True,
    )
    edited[ordered[19999]] = (rows[ordered[19999]][0], "财政 预算", *rows[ordered[19999]][2:])
    new_key = (10**9,) if key_kind == "int" else ("收款999999",)
    edited[new_key] = (Decimal("1.00"), None, None, None)
    load(right, table, edited)

    result = diff_tables(left, right, TABLE, threshold=threshold)
    assert set(result.only_left) == {ordered[10]}
    assert set(result.only_right) == {new_key}
    assert {r.key: set(r.columns) for r in result.changed} == {
        ordered[5000]: {"amt"},
        ordered[12000]: {"flag"},
        ordered[19999]: {"name"},
    }
    edits = 5
    assert result.stats.fetched_left <= edits * threshold
    assert result.stats.fetched_right <= edits * threshold
    assert result.stats.rows_fetched < n / 10, result.stats


@pytest.mark.parametrize("threshold", [1, 1000])
def test_row_text_is_unambiguous(engines, threshold):
    """Values that would concatenate alike (separators inside strings, NULL against the NULL marker and ''), one
    row a bucket or all in one."""
    left, right = engines
    keys = KEYS["int"]
    table = make_table(keys, ["name", "memo"])
    left_rows = {(1,): ("a|", "b"), (2,): (None, "x"), (3,): ("", "x"), (4,): ("~", "x"), (5,): ("1:a", "")}
    right_rows = {
        (1,): ("a", "|b"),
        (2,): ("~", "x"),
        (3,): (None, "x"),
        (4,): ("", "x"),
        (5,): ("1:a", None),
    }
    load(left, table, left_rows)
    load(right, table, right_rows)
    result = diff_tables(left, right, TABLE, threshold=threshold)
    assert {r.key: set(r.columns) for r in result.changed} == {
        (1,): {"name", "memo"},
        (2,): {"name"},
        (3,): {"name"},
        (4,): {"name"},
        (5,): {"memo"},
    }


# --- PostgreSQL ↔ PostgreSQL: the native row hash ----------------------------------------------------------------
#
# The rule, for both row hashes: a row whose canonical text differs in any compared column is reported with exactly
# those columns; a row whose canonical texts are all equal never is. "Canonical" below is written out per type from
# what PostgreSQL stores and the module docstring says is compared, independently of the diff's SQL.

NATIVE_TABLE = "recon_native"


def quantized(value: Decimal, places: int = 6) -> Decimal:
    return value.quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP
    )  # PostgreSQL's round(): half away


# jsonb keeps numbers as written and orders keys (shorter first, then bytewise); JSON null is not SQL NULL
JSONB_TEXT = {
    '{"a": 1, "b": 2}': '{"a": 1, "b": 2}',
    '{"b": 2, "a": 1}': '{"a": 1, "b": 2}',
    '{"a": 1.0}': '{"a": 1.0}',
    '{"a": 1.00}': '{"a": 1.00}',
    '{"bb": 1, "a": 2}': '{"a": 2, "bb": 1}',
    "null": "null",
    '"NULL"': '"NULL"',
    '""': '""',
}
UTC8 = timezone(timedelta(hours=8))
TRICKY_TEXT = ["", "NULL", "~", " ", "a", "a ", "A", "|", "1:a", "a|b", "\\N", "财政"]


def same(value):
    return value


PG_COLUMNS = {  # name → (type, values, canonical form)
    "i2": (postgresql.SMALLINT, st.integers(-(2**15), 2**15 - 1), same),
    "i4": (sa.Integer, st.integers(-(2**31), 2**31 - 1), same),
    "i8": (sa.BigInteger, st.integers(-(2**63), 2**63 - 1), same),
    "amt": (sa.Numeric(18, 2), decimals(12, 2), same),
    # no declared scale: compared at 6 decimals, so 1.0 = 1.00 and 1.0000001 = 1.0000002
    "num": (
        sa.Numeric,
        st.sampled_from(
            [
                Decimal(x)
                for x in ("1", "1.0", "1.00", "1.0000001", "1.0000002", "0.0000005", "0.0000004", "-0")
            ]
        )
        | decimals(12, 6),
        quantized,
    ),
    # floats: 15 significant digits (PostgreSQL's float8 → numeric), then 6 decimals
    "f8": (
        postgresql.DOUBLE_PRECISION,
        st.sampled_from([0.1, 0.2, 0.3, 0.30000000000000004, 1.0000001, 1.0000002, -0.0, 0.0, 2.5, -2.5]),
        lambda v: quantized(Decimal(format(v, ".15g"))),
    ),
    "vc": (sa.String(20), st.sampled_from(TRICKY_TEXT) | st.text(ALPHABET, max_size=8), same),
    "tx": (sa.Text, st.sampled_from(TRICKY_TEXT) | st.text(ALPHABET, max_size=8), same),
    "ch": (
        postgresql.CHAR(5),
        st.sampled_from(["", "a", "a ", " a", "A", "NULL", "~"]),
        lambda v: v.rstrip(" "),
    ),
    "d": (sa.Date, st.dates(date(1, 1, 1), date(9999, 12, 31)), same),
    "ts": (postgresql.TIMESTAMP(), st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)), same),
    # the same instant written in two zones is one value; the same wall-clock time in two zones is two
    "tstz": (
        postgresql.TIMESTAMP(timezone=True),
        st.sampled_from(
            [
                datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
                datetime(2026, 1, 1, 8, 0, tzinfo=UTC8),
                datetime(2026, 1, 1, 0, 0, tzinfo=UTC8),
                datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            ]
        ),
        lambda v: v.astimezone(UTC),
    ),
    "flag": (sa.Boolean, st.booleans(), same),
    "raw": (postgresql.BYTEA, st.sampled_from([b"", b"\x00", b"a", b"\x00a", b"a\x00", b"NULL"]), same),
    "doc": (postgresql.JSONB, st.sampled_from(sorted(JSONB_TEXT)), JSONB_TEXT.get),
}


@pytest.fixture(scope="module")
def pg_pair(tmp_path_factory):
    left = sa.create_engine(engine_url("postgresql", scratch_db("caiwei_recon_a"), tmp_path_factory))
    right = sa.create_engine(engine_url("postgresql", scratch_db("caiwei_recon_b"), tmp_path_factory))
    yield left, right
    for engine in (left, right):
        engine.dispose()


def pg_table(columns: list[str], types: dict | None = None) -> sa.Table:
    types = types or {}
    return sa.Table(
        NATIVE_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        *[sa.Column(name, types.get(name, PG_COLUMNS[name][0])) for name in columns],
    )


def load_pg(engine, table: sa.Table, rows: dict) -> None:
    """Like load(), jsonb written as its own text (SQLAlchemy's JSONB would serialise the string as a JSON string)."""
    table.drop(engine, checkfirst=True)
    table.create(engine)
    if not rows:
        return
    names = [c.name for c in table.columns]

    def value(name, v):
        if name == "doc" and v is not None:
            return sa.cast(sa.literal(v, sa.Text), postgresql.JSONB)
        return v

    with engine.begin() as conn:
        if "doc" not in names:
            conn.execute(table.insert(), [dict(zip(names, (*k, *v), strict=True)) for k, v in rows.items()])
            return
        conn.execute(
            table.insert().values(
                [
                    {n: value(n, v) for n, v in zip(names, (*k, *vals), strict=True)}
                    for k, vals in rows.items()
                ]
            )
        )


def canonical_changes(columns, left: dict, right: dict) -> dict:
    def canon(name, v):
        return None if v is None else PG_COLUMNS[name][2](v)

    changed = {}
    for key in set(left) & set(right):
        cols = {
            c for c, a, b in zip(columns, left[key], right[key], strict=True) if canon(c, a) != canon(c, b)
        }
        if cols:
            changed[key] = cols
    return changed


@st.composite
def pg_scenarios(draw):
    columns = draw(st.lists(st.sampled_from(sorted(PG_COLUMNS)), min_size=1, max_size=6, unique=True))
    if draw(st.booleans()):  # often two columns of one type, so that swapping their values is tried
        columns += [c for c in ("vc", "tx") if c not in columns]

    def values():
        return st.tuples(*[st.none() | PG_COLUMNS[c][1] for c in columns])

    left = draw(st.dictionaries(st.tuples(st.integers(-(10**6), 10**6)), values(), min_size=1, max_size=40))
    right = dict(left)
    for _ in range(draw(st.integers(1, 8))):
        keys = sorted(right)
        op = (
            draw(st.sampled_from(["value", "swap_columns", "swap_rows", "delete", "insert"]))
            if keys
            else "insert"
        )
        key = draw(st.sampled_from(keys)) if keys else None
        row = list(right[key]) if keys else []
        if op == "value":  # a new value, possibly only another spelling of the same one (1.0 → 1.00)
            i = draw(st.integers(0, len(columns) - 1))
            row[i] = draw(st.none() | PG_COLUMNS[columns[i]][1])
            right[key] = tuple(row)
        elif op == "swap_columns" and {"vc", "tx"} <= set(columns):
            i, j = columns.index("vc"), columns.index("tx")
            row[i], row[j] = row[j], row[i]
            right[key] = tuple(row)
        elif op == "swap_rows" and len(keys) > 1:  # two rows trade one column's values
            other = draw(st.sampled_from([k for k in keys if k != key]))
            i = draw(st.integers(0, len(columns) - 1))
            row2 = list(right[other])
            row[i], row2[i] = row2[i], row[i]
            right[key], right[other] = tuple(row), tuple(row2)
        elif op == "delete":
            del right[key]
        else:
            new = draw(st.tuples(st.integers(-(10**6), 10**6)).filter(lambda k: k not in right))
            right[new] = draw(values())
    threshold = draw(st.sampled_from([1, 4, 1000]))
    return columns, left, right, threshold


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=pg_scenarios())
def test_native_hash_reports_exactly_the_canonical_changes(pg_pair, scenario):
    """Both row hashes on two PostgreSQL databases: exactly the canonical changes, and the same output."""
    columns, left_rows, right_rows, threshold = scenario
    left, right = pg_pair
    table = pg_table(columns)
    load_pg(left, table, left_rows)
    load_pg(right, table, right_rows)

    native = diff_tables(left, right, NATIVE_TABLE, threshold=threshold)
    portable = diff_tables(left, right, NATIVE_TABLE, threshold=threshold, native_hash=False)
    assert (native.stats.row_hash, portable.stats.row_hash) == ("native", "md5")

    changed = canonical_changes(columns, left_rows, right_rows)
    for result in (native, portable):
        assert set(result.only_left) == set(left_rows) - set(right_rows)
        assert set(result.only_right) == set(right_rows) - set(left_rows)
        assert {row.key: set(row.columns) for row in result.changed} == changed
    # identical output, value texts included
    a, b = native.as_dict(), portable.as_dict()
    del a["stats"], b["stats"]
    assert a == b


def test_native_hash_only_for_the_same_types(pg_pair):
    """A column declared differently on the two sides (scale, length, type) keeps the portable MD5 hash; the
    canonical comparison is the same either way."""
    left, right = pg_pair
    rows = {(1,): (Decimal("1.50"), "a"), (2,): (Decimal("2.00"), "b"), (3,): (Decimal("3.00"), "c")}
    load_pg(left, pg_table(["amt", "vc"]), rows)
    edited = {(1,): (Decimal("1.5000"), "a"), (2,): (Decimal("2.0001"), "b"), (3,): (Decimal("3.0000"), "c ")}
    load_pg(right, pg_table(["amt", "vc"], {"amt": sa.Numeric(18, 4), "vc": sa.Text}), edited)
    for threshold in (1, 1000):
        result = diff_tables(left, right, NATIVE_TABLE, threshold=threshold)
        assert result.stats.row_hash == "md5"
        assert "amt" in result.stats.native_hash_off and "vc" in result.stats.native_hash_off
        assert {r.key: set(r.columns) for r in result.changed} == {(2,): {"amt"}, (3,): {"vc"}}
        assert result.changed[0].columns["amt"] == ("2.0000", "2.0001")

    # the same types, another major version on one side: portable
    load_pg(right, pg_table(["amt", "vc"]), rows)
    diff = TableDiff(left, right, NATIVE_TABLE)
    assert diff.stats.row_hash == "native"
    real = diff.right.flavor.server
    diff.right.flavor.server = lambda: {**real(), "major": real()["major"] + 1}
    assert native_hash_reason(diff.left, diff.right) == "两边数据库版本或字符集不同"
    diff.left.close()
    diff.right.close()


def test_checksum_query_plans_few_groups_in_parallel(pg_pair):
    """The planner must not size the bucket aggregate by the key's distinct values (every row): with the estimate
    at a few hundred groups it can aggregate in parallel workers as COUNT(*) does."""
    left, right = pg_pair
    n = 30000
    rows = {(i,): (Decimal(i) / 100, f"单位{i % 97}") for i in range(n)}
    table = pg_table(["amt", "vc"])
    load_pg(left, table, rows)
    load_pg(right, table, rows)
    with left.begin() as conn:
        conn.exec_driver_sql(f"ANALYZE {NATIVE_TABLE}")
    diff = TableDiff(left, right, NATIVE_TABLE)
    query = checksum_query(diff.left, Split(Segment(0, n), width=100), integer=True)
    sql = str(query.compile(left, compile_kwargs={"literal_binds": True}))
    with left.begin() as conn:
        for setting in (
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
        ):
            conn.exec_driver_sql(f"SET LOCAL {setting}")
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()[0]["Plan"]
        buckets = conn.exec_driver_sql(sql).all()
    diff.left.close()
    diff.right.close()
    assert plan["Plan Rows"] <= 1000  # not ~n

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    assert any(n.get("Partial Mode") == "Partial" for n in nodes(plan))
    assert any(n["Node Type"] == "Seq Scan" and n["Parallel Aware"] for n in nodes(plan))
    assert len(buckets) == n // 100 and sum(r[1] for r in buckets) == n


# --- string keys under a case-insensitive collation -------------------------------------------------------------


def test_case_insensitive_keys_ordered_by_code_point(tmp_path_factory):
    """MariaDB's default collation sorts "a1" before "B1", PostgreSQL's C order the other way round: the diff orders
    both by code point, so the cut points sampled on one side make the same buckets on the other."""
    pg = sa.create_engine(engine_url("postgresql", scratch_db("caiwei_recon_a"), tmp_path_factory))
    maria = sa.create_engine(engine_url("mariadb", scratch_db("caiwei_recon_b"), tmp_path_factory))
    table = sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(20)),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_general_ci",
    )
    # distinct under a case-insensitive collation; upper and lower case interleave
    letters = "aBcDeFgHiJkLmNoPqRsTuVwXyZ"
    rows = {(f"{ch}{i:03d}",): (f"单位{i}",) for i in range(40) for ch in letters}
    edited = dict(rows)
    del edited[("B007",)]
    edited[("c020",)] = ("改",)
    edited[("Z039",)] = ("改",)
    edited[("甲001",)] = ("新",)
    try:
        for a, b in ((pg, maria), (maria, pg)):
            load(a, table, rows)
            load(b, table, edited)
            result = diff_tables(a, b, TABLE, threshold=4, factor=2, max_buckets=4)
            assert set(result.only_left) == {("B007",)}
            assert set(result.only_right) == {("甲001",)}
            assert {r.key for r in result.changed} == {("c020",), ("Z039",)}
            assert result.stats.fetched_left < len(rows) / 4
    finally:
        pg.dispose()
        maria.dispose()


# --- Oracle: rendered only ----------------------------------------------------------------------------------------


def oracle_side() -> Side:
    table = sa.Table(
        "PAY_VOUCHER",
        sa.MetaData(),
        sa.Column("MOF_DIV_CODE", oracle.VARCHAR2(9), primary_key=True),
        sa.Column("PAY_CERT_NO", oracle.VARCHAR2(40), primary_key=True),
        sa.Column("PAY_AMT", oracle.NUMBER(18, 2)),
        sa.Column("PAY_DATE", oracle.DATE),
        sa.Column("CREATE_TIME", oracle.TIMESTAMP),
        sa.Column("REMARK", oracle.NVARCHAR2(200)),
        sa.Column("ATTACH", oracle.RAW(16)),
    )
    side = Side(None, table, OracleFlavor(None), ["MOF_DIV_CODE", "PAY_CERT_NO"])
    side.renderings = [
        (r, r.left)
        for r in (Rendering.joint(c.name, c.type, c.type) for c in table.columns if c.name not in side.keys)
    ]
    return side


def render(query) -> str:
    return str(query.compile(dialect=oracle.dialect(), compile_kwargs={"literal_binds": True}))


def test_oracle_checksum_renders():
    """No Oracle server here: the queries are compiled with SQLAlchemy's Oracle dialect and read."""
    side = oracle_side()
    split = Split(Segment(("152500000", "A1"), None), cuts=[("152500000", "B"), ("152502000", "A")])
    sql = render(checksum_query(side, split, integer=False))
    assert "rawtohex(standard_hash(" in sql
    assert "'MD5'" in sql and "to_number(substr(" in sql and "'XXXXXXXXXXXXXXX'" in sql
    assert "to_char(\"PAY_VOUCHER\".\"PAY_DATE\", 'YYYY-MM-DD HH24:MI:SS') || '.000000'" in sql
    assert "'YYYY-MM-DD HH24:MI:SS.FF6'" in sql  # TIMESTAMP
    assert 'round("PAY_VOUCHER"."PAY_AMT", 2), \'FM' in sql and "0.00')" in sql
    assert 'lower(rawtohex("PAY_VOUCHER"."ATTACH"))' in sql
    assert "length(" in sql and "char_length" not in sql
    # no row values: Oracle has no (a, b) < (x, y)
    assert '("PAY_VOUCHER"."MOF_DIV_CODE", ' not in sql
    assert "GROUP BY rows_.bkt" in sql and " AS rows_" not in sql  # Oracle aliases subqueries without AS

    sample = render(sample_query(side, Segment(), step=100))
    assert "row_number() OVER (ORDER BY" in sample and "mod(" in sample.lower()

    fetch = render(fetch_query(side, [split.child(0), split.child(2)], integer=False))
    assert " OR " in fetch and "NOT (" in fetch


def test_oracle_integer_buckets_render():
    table = sa.Table("T", sa.MetaData(), sa.Column("ID", oracle.NUMBER(19, 0), primary_key=True))
    side = Side(None, table, OracleFlavor(None), ["ID"])
    sql = render(checksum_query(side, Split(Segment(-5, 1000), width=100), integer=True))
    assert 'FLOOR(("T"."ID" - (-5)) / 100)' in sql.replace("floor", "FLOOR")
    assert '"T"."ID" >= (-5) AND "T"."ID" < 1000' in sql


# --- command line -------------------------------------------------------------------------------------------------


def test_cli_json_and_text(tmp_path, capsys):
    left_url, right_url = f"sqlite:///{tmp_path / 'l.db'}", f"sqlite:///{tmp_path / 'r.db'}"
    left, right = sa.create_engine(left_url), sa.create_engine(right_url)
    table = make_table(KEYS["int"], ["amt", "name"])
    rows = {(i,): (Decimal(i) / 4, f"单位{i}") for i in range(300)}
    edited = dict(rows)
    edited[(42,)] = (Decimal("99.99"), "单位42")
    load(left, table, rows)
    load(right, table, edited)
    left.dispose()
    right.dispose()

    argv = ["diff", "--left", left_url, "--right", right_url, "--table", TABLE, "--threshold", "10"]
    assert cli.main([*argv, "--key", "id", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] == [{"key": [42], "columns": {"amt": {"left": "10.50", "right": "99.99"}}}]
    assert data["only_left"] == data["only_right"] == []
    assert data["identical"] is False
    assert data["rows"] == {"left": 300, "right": 300}
    assert data["stats"]["fetched_left"] <= 10

    assert cli.main([*argv, "--columns", "name"]) == 0
    assert "两边一致" in capsys.readouterr().out

    assert cli.main(["diff", "--left", left_url, "--right", right_url, "--table", "nope"]) == 2
    assert "没有表 nope" in capsys.readouterr().err
    assert cli.main([*argv, "--key", "id,missing"]) == 2
    assert "键列 missing 不在两边的表中" in capsys.readouterr().err

    out = io.StringIO()
    assert cli.run({"left": left_url, "right": right_url, "table": TABLE, "threshold": 10}, out) == 1
    assert "内容不同\t42\tamt：“10.50” → “99.99”" in out.getvalue()
    assert "左侧 300 行，右侧 300 行" in out.getvalue()


def test_management_command(tmp_path):
    """The same options through Django's command (the lead registers the app; the command object is called here)."""
    from django.core.management import call_command

    from caiwei.recon.management.commands.recon import Command

    left_url, right_url = f"sqlite:///{tmp_path / 'l.db'}", f"sqlite:///{tmp_path / 'r.db'}"
    left, right = sa.create_engine(left_url), sa.create_engine(right_url)
    table = make_table(KEYS["str"], ["name", "day"])
    rows = {(f"收款{i:04d}",): (f"单位{i}", date(2026, 1, 1 + i % 28)) for i in range(200)}
    edited = {k: v for k, v in rows.items() if k != ("收款0100",)}
    load(left, table, rows)
    load(right, table, edited)
    left.dispose()
    right.dispose()
    out, err = io.StringIO(), io.StringIO()
    call_command(
        Command(),
        "diff",
        "--left",
        left_url,
        "--right",
        right_url,
        "--table",
        TABLE,
        "--json",
        stdout=out,
        stderr=err,
    )
    data = json.loads(out.getvalue())
    assert data["only_left"] == [["收款0100"]] and data["only_right"] == [] and data["changed"] == []
    assert data["rows"] == {"left": 200, "right": 199}
    out = io.StringIO()
    call_command(
        Command(), "diff", "--left", left_url, "--right", right_url, "--table", TABLE, stdout=out, stderr=err
    )
    assert "仅左侧有\t收款0100\n" in out.getvalue() and err.getvalue() == ""
