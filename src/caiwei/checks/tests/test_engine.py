"""The check engine against the sandbox's ground truth, on SQLite, PostgreSQL and MariaDB: for every data-matter
fault type, precision and recall of the shipped packs are 1.0; a clean sandbox yields no finding."""

import sqlite3
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caiwei.checks.engine import RuleError, find_rule, load_rule, select_rules, shipped_packs
from caiwei.checks.runner import Options, connect, read_only, run_rules, run_url
from caiwei.checks.sqlplan import Mapping, Scope, count_queries, plan
from caiwei.checks.truth import FAULT_RULES, NOT_DATA, compare, findings
from caiwei.sandbox.generator import FAULT_TYPES, GenerateSpec, generate, parse_faults, valid_id_number
from caiwei.sandbox.tests.test_generator import db_url  # noqa: F401  (the three real databases)

AS_OF = date(2026, 12, 31)


def outcome_findings(outcomes):
    return findings((o.rule.id, o.keys) for o in outcomes)


def test_every_data_fault_has_rules():
    assert set(FAULT_RULES) == set(FAULT_TYPES) - NOT_DATA
    ids = {r.id for r in select_rules("all")}
    assert {r for rules in FAULT_RULES.values() for r in rules} <= ids
    titles = {p.title for p in shipped_packs().values()}
    assert titles == {
        "额度检查",
        "要素检查",
        "业务检查",
        "部标校验",
        "重复支付",
        "资产数据体检",
        "人员信息检查",
        "由表结构约束生成的规则",
        "主数据语义检查",
        "经办人与角色检查",
        "金额合理性检查",
        "会计语义检查",
    }


def test_precision_and_recall_are_one_at_default_scale(db_url):  # noqa: F811
    manifest = generate(db_url, GenerateSpec(seed=21, faults=parse_faults("all=2")))  # default scale: 20 000
    outcomes = run_url(db_url, select_rules("all"), Options(as_of=AS_OF))
    assert [o.error for o in outcomes if o.error] == []
    report = compare(manifest.as_dict(), outcome_findings(outcomes))
    table = {r["fault"]: (r["precision"], r["recall"]) for r in report["faults"]}
    assert table == {f: (1.0, 1.0) for f in FAULT_RULES}, report
    assert (
        report["stray"] == {}
    )  # no rule flags a row that is not a fault's row (rules outside FAULT_RULES too)
    for o in outcomes:
        assert o.count == len(o.keys) and not o.keys_truncated, o.rule.id


def test_clean_sandbox_yields_no_finding(db_url):  # noqa: F811
    generate(db_url, GenerateSpec(payments=6000, seed=4))
    outcomes = run_url(db_url, select_rules("all"), Options(as_of=AS_OF))
    assert [(o.rule.id, o.count, o.error) for o in outcomes if o.count or o.error] == []


def test_read_only_and_statement_timeout(db_url):  # noqa: F811
    generate(db_url, GenerateSpec(payments=3000, seed=4))
    engine = connect(db_url)
    try:
        with read_only(engine, 5) as conn, pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text("DELETE FROM person_info"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM person_info")).scalar() > 0
        slow = load_rule(SLOW_RULE)
        [outcome] = run_rules(engine, [slow], Options(as_of=AS_OF, timeout_s=1))
        assert outcome.error == "执行超时（超过 1 秒）" and outcome.count is None
    finally:
        engine.dispose()


SLOW_RULE = Path(__file__).with_name("slow_rule.yaml")


@pytest.fixture(scope="module")
def faulty_sqlite(tmp_path_factory):
    path = tmp_path_factory.mktemp("checks") / "faulty.sqlite3"
    manifest = generate(
        f"sqlite:///{path}", GenerateSpec(payments=5000, seed=8, faults=parse_faults("all=1"))
    )
    return path, manifest


def test_combined_scans_count_the_same_as_one_query_per_rule(faulty_sqlite):
    path, _ = faulty_sqlite
    rules = select_rules("all")
    combined = run_url(f"sqlite:///{path}", rules, Options(as_of=AS_OF, sample=False))
    alone = run_url(f"sqlite:///{path}", rules, Options(as_of=AS_OF, sample=False, combine=False))
    assert [(o.rule.id, o.count, o.amount) for o in combined] == [
        (o.rule.id, o.count, o.amount) for o in alone
    ]
    assert all(o.keys == [] for o in combined)  # the row query is switched off
    # With rows: shared scans fetch the failing rows of several rules at once; the same rows as one query per rule.
    grouped = run_url(f"sqlite:///{path}", rules, Options(as_of=AS_OF))
    single = run_url(f"sqlite:///{path}", rules, Options(as_of=AS_OF, combine=False))

    def rows(outcomes):
        return [
            (o.rule.id, o.count, sorted(map(tuple, o.keys)), o.columns if o.count else [], o.units)
            for o in outcomes
        ]

    assert rows(grouped) == rows(single)
    assert sum(len(o.keys) for o in grouped) == sum(o.count for o in grouped) > 50
    planned = [plan(r, as_of=AS_OF) for r in rules]
    queries = count_queries(planned, "sqlite")
    assert len(queries) < len(rules) - 5  # rules over the same tables share a scan
    assert any(len(q.rules) >= 3 for q in queries)


def test_mapping_serves_a_schema_with_other_names(faulty_sqlite, tmp_path):
    path, _ = faulty_sqlite
    copy = tmp_path / "renamed.sqlite3"
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("ALTER TABLE pay_voucher RENAME TO zf_zfsq")
        conn.execute("ALTER TABLE zf_zfsq RENAME COLUMN pay_amt TO zfje")
        conn.execute("ALTER TABLE zf_zfsq RENAME COLUMN exp_func_code TO gnkm")
        conn.execute("ALTER TABLE ba_bgt_info RENAME COLUMN exp_func_code TO gnkm_dm")
    mapping = Mapping.from_dict(
        {
            "tables": {"pay_voucher": "zf_zfsq"},
            "columns": {
                "pay_voucher": {"pay_amt": "zfje", "exp_func_code": "gnkm"},
                "ba_bgt_info": {"exp_func_code": "gnkm_dm"},
            },
        }
    )
    rules = select_rules("all")
    original = run_url(f"sqlite:///{path}", rules, Options(as_of=AS_OF))
    mapped = run_url(f"sqlite:///{copy}", rules, Options(as_of=AS_OF), mapping=mapping)
    assert [o.error for o in mapped if o.error] == []
    assert [(o.rule.id, o.count, o.amount, o.keys) for o in mapped] == [
        (o.rule.id, o.count, o.amount, o.keys) for o in original
    ]
    elem = next(o for o in mapped if o.rule.id == "ELEM-001")
    assert "zf_zfsq" in elem.sql and "gnkm" in elem.sql and "exp_func_code" in elem.sample[0]
    unmapped = run_url(f"sqlite:///{copy}", [find_rule("ELEM-001")], Options(as_of=AS_OF))
    assert unmapped[0].error.startswith("表或列不存在")
    with pytest.raises(RuleError, match="不合法"):
        Mapping.from_dict({"tables": {"pay_voucher": "x; DROP TABLE y"}})


def test_scope_narrows_to_a_region_and_a_date_window(faulty_sqlite):
    path, manifest = faulty_sqlite
    url = f"sqlite:///{path}"
    rule = find_rule("DUP-001")
    everything = run_url(url, [rule], Options(as_of=AS_OF))[0]
    regions = {k[0][:9] for k in everything.keys}
    assert everything.count == 2 and len(regions) == 1
    region = regions.pop()
    inside = run_url(url, [rule], Options(as_of=AS_OF, scope=Scope(regions=(region,))))[0]
    outside = run_url(url, [rule], Options(as_of=AS_OF, scope=Scope(regions=("159900000",))))[0]
    assert inside.count == 2 and outside.count == 0
    day = date.fromisoformat(everything.sample[0]["pay_app_date"])
    window = Scope(date_from=day, date_to=day, year=2026)
    assert run_url(url, [rule], Options(as_of=AS_OF, scope=window))[0].count == 2
    assert "IN ('" + region in inside.sql
    with pytest.raises(RuleError, match="区划代码格式"):
        Scope(regions=("1' OR '1'='1",))


def test_units_are_grouped_in_the_database_when_rows_are_capped(faulty_sqlite):
    path, _ = faulty_sqlite
    rule = find_rule("DUP-001")
    full = run_url(f"sqlite:///{path}", [rule], Options(as_of=AS_OF))[0]
    capped = run_url(f"sqlite:///{path}", [rule], Options(as_of=AS_OF, key_cap=1))[0]
    assert full.count == capped.count == 2 and len(capped.keys) == 1 and capped.keys_truncated
    assert capped.units == full.units and full.units[0]["count"] == 2 and full.units[0]["agency_name"]


def test_samples_are_masked(faulty_sqlite):
    path, _ = faulty_sqlite
    [dup, ident] = run_url(
        f"sqlite:///{path}", [find_rule("DUP-001"), find_rule("PERSON-001")], Options(as_of=AS_OF)
    )
    for row in dup.sample:
        assert "*" in row["payee_acct_no"] and len(row["payee_acct_no"]) == 16
    for row in ident.sample:
        assert row["iden_no"][6:16] == "*" * 10


def test_dialects_render_without_limit_for_oracle():
    rule = find_rule("BIZ-001")
    p = plan(rule, as_of=AS_OF)
    from caiwei.checks.sqlplan import rows_query

    assert "FETCH FIRST 50 ROWS ONLY" in rows_query(p, "oracle", 50)
    assert "LIMIT" not in rows_query(p, "dm", 50)
    assert "LIMIT 50" in rows_query(p, "mysql", 50)
    assert p.params == {"cutoff": "2026-12-28"}
    assert "CAST('2026-12-28' AS DATE)" in p.listing("postgresql")
    with pytest.raises(RuleError, match="不支持"):
        rows_query(p, "db2", 5)
    for dialect in ("postgresql", "sqlite", "mysql", "oracle", "dm"):
        assert count_queries([plan(r, as_of=AS_OF) for r in select_rules("all")], dialect)


def test_bad_rule_files_are_named(tmp_path):
    (tmp_path / "a.yaml").write_text("id: X\ntitle: t\n", encoding="utf-8")
    with pytest.raises(RuleError, match="a.yaml：缺少字段"):
        load_rule(tmp_path / "a.yaml")
    base = "id: X\ntitle: t\nseverity: 一般\nmodule: m\nkey: k\n"
    cases = {
        "b.yaml": (base + "sql: SELEKT 1\n", "SQL 无法解析"),
        "c.yaml": (base + "sql: SELECT k FROM t WHERE b = :x\n", "参数 x 未在 params 中声明"),
        "d.yaml": (base + "sql: SELECT a FROM t\n", "主键或金额列 k 不在查询结果的列中"),
        "e.yaml": (base.replace("一般", "严重") + "sql: SELECT k FROM t\n", "严重程度"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(RuleError, match=message):
            load_rule(tmp_path / name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="0123456789X", min_size=16, max_size=19))
def test_id_check_in_sql_agrees_with_python(value):
    """PERSON-002 computes the GB 11643 check digit in SQL; it must agree with the Python check everywhere."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE person_info (person_id TEXT, agency_code TEXT, mof_div_code TEXT, person_name TEXT, iden_no TEXT)"
    )
    conn.execute("INSERT INTO person_info VALUES ('1', 'a', '152500000', 'n', ?)", (value,))
    sql = plan(find_rule("PERSON-002"), as_of=AS_OF).listing("sqlite")
    flagged = bool(conn.execute(sql).fetchall())
    assert flagged == (not valid_id_number(value))


RENAMABLE = sorted(
    (table, column)
    for table, columns in {
        "pay_voucher": ["pay_amt", "exp_func_code", "bgt_id", "payee_acct_no", "agency_code", "tracking_id"],
        "ba_bgt_info": ["amount", "pay_app_amt", "exp_func_code", "bgt_id", "agency_code"],
        "pay_voucher_bill": ["pay_cert_no", "xpay_amt", "vou_date", "sign_status", "lqd_cert_no"],
        "pay_bank_receipt": ["pay_cert_no", "receipt_no", "amount"],
        "asset_card": ["asset_no", "plate_no", "net_value"],
        "person_info": ["iden_no", "person_id"],
        "ele_exp_func": ["code", "is_leaf"],
        "ele_agency": ["agency_name"],
    }.items()
    for column in columns
)
TABLES = sorted({t for t, _ in RENAMABLE})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    columns=st.sets(st.sampled_from(RENAMABLE), min_size=1, max_size=8),
    tables=st.sets(st.sampled_from(TABLES), max_size=3),
)
def test_any_renaming_with_its_mapping_gives_the_same_results(
    faulty_sqlite, tmp_path_factory, columns, tables
):
    """Whatever the target calls its tables and columns, the mapping makes every rule find the same rows."""
    path, _ = faulty_sqlite
    copy = tmp_path_factory.mktemp("renamed") / "t.sqlite3"
    copy.write_bytes(path.read_bytes())
    mapping = {"tables": {}, "columns": {}}
    with sqlite3.connect(copy) as conn:
        for table, column in sorted(columns):
            conn.execute(f"ALTER TABLE {table} RENAME COLUMN {column} TO x_{column}")
            mapping["columns"].setdefault(table, {})[column] = f"x_{column}"
        for table in sorted(tables):
            conn.execute(f"ALTER TABLE {table} RENAME TO t_{table}")
            mapping["tables"][table] = f"t_{table}"
    rules = select_rules("all")
    expected = _reference_results(path)
    mapped = run_url(f"sqlite:///{copy}", rules, Options(as_of=AS_OF), mapping=Mapping.from_dict(mapping))
    assert [o.error for o in mapped if o.error] == []
    assert [(o.rule.id, o.count, o.amount, sorted(map(tuple, o.keys)), o.units) for o in mapped] == expected


_REFERENCE: dict = {}


def _reference_results(path):
    if path not in _REFERENCE:
        outcomes = run_url(f"sqlite:///{path}", select_rules("all"), Options(as_of=AS_OF))
        _REFERENCE[path] = [
            (o.rule.id, o.count, o.amount, sorted(map(tuple, o.keys)), o.units) for o in outcomes
        ]
    return _REFERENCE[path]


def test_parameters_are_overridden_per_rule(faulty_sqlite):
    from caiwei.checks.engine import parse_overrides

    path, manifest = faulty_sqlite
    rules = [find_rule("BIZ-001"), find_rule("PERSON-003")]
    assert parse_overrides("BIZ-001.cutoff=400， PERSON-003.max_item_amount=1e9", rules) == {
        "BIZ-001": {"cutoff": 400},
        "PERSON-003": {"max_item_amount": 1_000_000_000},
    }
    default = run_url(f"sqlite:///{path}", rules, Options(as_of=AS_OF))
    assert [o.count for o in default] == [1, 1]
    overridden = run_url(
        f"sqlite:///{path}",
        rules,
        Options(
            as_of=AS_OF, params=parse_overrides("BIZ-001.cutoff=400,PERSON-003.max_item_amount=1e9", rules)
        ),
    )
    assert [o.count for o in overridden] == [0, 0]
    assert overridden[0].params == {"cutoff": "2025-11-26"} and "2025-11-26" in overridden[0].sql
    for text, message in {
        "BIZ-001.cutoff": "格式应为",
        "BIZ-009.cutoff=3": "没有规则 BIZ-009",
        "BIZ-001.days=3": "没有参数 days（可用：cutoff）",
        "BIZ-001.cutoff=三": "应为整数（天数）",
        "BIZ-001.cutoff=99999": "0～3660",
    }.items():
        with pytest.raises(RuleError, match=message):
            parse_overrides(text, rules)
    with pytest.raises(RuleError, match="由检查日推算"):
        parse_overrides("BIZ-004.month_end=3", [find_rule("BIZ-004")])
