"""The cross-database table diff on real engines: random tables, random edits on either side; the diff must report
exactly the keys only on one side and the changed rows with exactly the changed columns, fetching few rows."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, oracle

from caiwei.conftest import scratch_db
from caiwei.recon import cli
from caiwei.recon.diff import (
    OracleFlavor,
    Rendering,
    Segment,
    Side,
    Split,
    checksum_query,
    diff_tables,
    fetch_query,
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


def test_row_text_is_unambiguous(engines):
    """Values that would concatenate alike (separators inside strings, NULL against the NULL marker and '')."""
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
    result = diff_tables(left, right, TABLE, threshold=1)
    assert {r.key: set(r.columns) for r in result.changed} == {
        (1,): {"name", "memo"},
        (2,): {"name"},
        (3,): {"name"},
        (4,): {"name"},
        (5,): {"memo"},
    }


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
