"""近似重复支付 (DUP-003, DUP-004) on SQLite, PostgreSQL and MariaDB: every shape of the sandbox's
near_duplicate_payment fault is found with precision = recall = 1.0 and nothing else is; the declared normaliser's SQL
agrees with a Python reference written from the rule on every engine for random text and random parameter lists."""

import re
import unicodedata
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caiwei.checks.engine import RuleError, find_rule, load_rule, parse_overrides, select_rules
from caiwei.checks.present import pair_rows
from caiwei.checks.runner import Options, connect, run_url
from caiwei.checks.sqlplan import SOURCE_DIALECT, bind_normalizers, plan, render
from caiwei.checks.truth import compare, findings
from caiwei.sandbox.generator import NEAR_DUPLICATE_SHAPES, GenerateSpec, generate, parse_faults
from caiwei.sandbox.tests.test_generator import db_url  # noqa: F401  (the three real databases)

AS_OF = date(2026, 12, 31)
RULES = ("DUP-003", "DUP-004")


@pytest.fixture(scope="module")
def faulty(db_url):  # noqa: F811
    """Every shape twice, with exact duplicates and a renamed payee beside them (which must stay apart)."""
    spec = (
        f"near_duplicate_payment={2 * len(NEAR_DUPLICATE_SHAPES)},duplicate_payment=2,payee_name_mismatch=2"
    )
    manifest = generate(db_url, GenerateSpec(payments=8000, seed=5, faults=parse_faults(spec)))
    outcomes = run_url(db_url, select_rules("duplicate_payment,schema_derived"), Options(as_of=AS_OF))
    return manifest, outcomes


def test_every_shape_is_found_and_nothing_else(faulty):
    manifest, outcomes = faulty
    assert [o.error for o in outcomes if o.error] == []
    report = compare(manifest.as_dict(), findings((o.rule.id, o.keys) for o in outcomes))
    table = {r["fault"]: (r["expected"], r["precision"], r["recall"]) for r in report["faults"]}
    assert table["near_duplicate_payment"] == (2 * len(NEAR_DUPLICATE_SHAPES), 1.0, 1.0), report
    assert table["duplicate_payment"] == (4, 1.0, 1.0) and table["payee_name_mismatch"] == (2, 1.0, 1.0)
    assert report["stray"] == {}
    by_id = {o.rule.id: o for o in outcomes}
    # DUP-004 alone finds the account written differently under a mistyped name; both find the payment paid again.
    only_account = {k[0] for k in by_id["DUP-004"].keys} - {k[0] for k in by_id["DUP-003"].keys}
    assert len(only_account) == 2


def _pairs(outcome):
    return [
        {f["name"]: f for f in pair["fields"]}
        for pair in pair_rows(outcome.rule, outcome.columns, outcome.sample)
    ]


def test_the_shapes_as_the_pairs_show_them(faulty):
    """Each shape of the fault, recognised from the two rows of its pair (not from the generator's bookkeeping)."""
    _, outcomes = faulty
    by_id = {o.rule.id: o for o in outcomes}
    shapes = set()
    for pair in _pairs(by_id["DUP-003"]) + _pairs(by_id["DUP-004"]):
        first, second = pair["payee_acct_name"]["first"], pair["payee_acct_name"]["second"]
        assert pair["pay_amt"]["same_row"] and pair["agency_code"]["same_row"]
        assert 0 <= int(pair["days_apart"]["first"]) <= 7
        assert pair["pay_app_id"]["first"] != pair["pay_app_id"]["second"]
        if first == second:
            shapes.add("date" if pair["pay_app_date"]["differs"] else "?")
        elif second.endswith("（个人）"):
            shapes.add("personal")
        elif any(0xFF01 <= ord(c) <= 0xFF5E for c in second):
            shapes.add("fullwidth")
        elif "·" in second:
            shapes.add("punctuation")
        elif " " in second or "\u3000" in second:
            shapes.add("spaces")
        elif len(second) < len(first):
            shapes.add("suffix")
        elif pair["payee_acct_no"]["differs"]:
            shapes.add("account")
    assert shapes == set(NEAR_DUPLICATE_SHAPES)


def test_monthly_payments_of_the_same_amount_are_not_near_duplicates(tmp_path):
    """Rent paid each month: same unit, payee and amount, 28–31 days apart — outside the 7-day window."""
    url = f"sqlite:///{tmp_path / 'rent.sqlite3'}"
    generate(url, GenerateSpec(payments=2000, seed=3))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        row = (
            conn.execute(sa.text("SELECT * FROM pay_voucher ORDER BY pay_app_date, pay_app_id LIMIT 1"))
            .mappings()
            .one()
        )
        first = date.fromisoformat(str(row["pay_app_date"])[:10])
        for month in (1, 2, 3):
            values = dict(
                row, pay_app_id=f"{row['pay_app_id']}R{month}", pay_app_no=f"{row['pay_app_no']}R{month}"
            )
            values["pay_app_date"] = first + timedelta(days=30 * month)
            conn.execute(
                sa.text(
                    f"INSERT INTO pay_voucher ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})"
                ),
                values,
            )
    engine.dispose()
    rules = [find_rule(r) for r in RULES]
    assert [o.count for o in run_url(url, rules, Options(as_of=AS_OF))] == [0, 0]
    # With a window of 31 days the same payments are pairs.
    wide = Options(
        as_of=AS_OF, params=parse_overrides("DUP-003.window_days=31,DUP-004.window_days=31", rules)
    )
    assert [o.count for o in run_url(url, rules, wide)] == [3, 3]


def test_parameters_are_text_lists_and_bad_normalisers_are_named(tmp_path):
    rules = [find_rule("DUP-003")]
    overrides = parse_overrides("DUP-003.suffixes=有限公司、中心,DUP-003.window_days=3", rules)
    assert overrides == {"DUP-003": {"suffixes": "有限公司、中心", "window_days": 3}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: X-1\ntitle: 测试\nseverity: 一般\nmodule: 测试\nkey: [k]\n"
        "sql: SELECT p.pay_app_id AS k FROM pay_voucher p WHERE caiwei_norm(p.use_des, 'n') = ''\n"
        "normalize: {n: {width: true}}\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError, match="只能作为查询的输出列"):
        load_rule(bad)
    bad.write_text(
        bad.read_text(encoding="utf-8").replace("normalize: {n: {width: true}}", ""), encoding="utf-8"
    )
    with pytest.raises(RuleError, match="未在 normalize 中声明"):
        load_rule(bad)


# --- the normaliser: SQL on each engine against a Python reference written from the rule ------------------------


def reference(text: str, ignore: str, suffixes: list[str], prefixes: list[str]) -> str:
    """DUP-003's normaliser as its rule file describes it: full-width forms folded as NFKC folds them (only the
    full-width block and the ideographic space), ASCII letters upper-cased, whitespace and the ignored characters
    (folded the same way) deleted; then the longest matching suffix, then the longest matching prefix (each folded
    and cleaned the same way), stripped only when something is left."""

    def fold(value: str) -> str:
        value = "".join(
            unicodedata.normalize("NFKC", c) if 0xFF01 <= ord(c) <= 0xFF5E or c == "\u3000" else c
            for c in value
        )
        return "".join(c.upper() if "a" <= c <= "z" else c for c in value)

    gone = set(" \t\r\n") | set(fold(ignore))

    def clean(value: str) -> str:
        return "".join(c for c in fold(value) if c not in gone)

    name = clean(text)
    for affixes, suffix in ((suffixes, True), (prefixes, False)):
        for affix in sorted({a for a in map(clean, affixes) if a}, key=lambda a: (-len(a), a)):
            if len(name) > len(affix) and (name.endswith(affix) if suffix else name.startswith(affix)):
                name = name[: -len(affix)] if suffix else name[len(affix) :]
                break
    return name


ALPHABET = st.sampled_from(
    list("abcXYZ019 \t\n\u3000·。、，,.-_()（）【】:'\"\\%有限公司责任股份个人王李中心")
    + [chr(c) for c in range(0xFF01, 0xFF5F, 7)]
    + ["ａ", "Ｚ", "０", "９", "（", "）", "：", "％", "＼"]
)
AFFIXES = st.lists(
    st.sampled_from(["有限公司", "公司", "（个人）", "股份有限公司", "中心", "ＡＢ", "ab", "王", "李 ", "."]),
    max_size=4,
)


def _normalise_sql(dialect: str, ignore: str, suffixes: list[str], prefixes: list[str]) -> str:
    rule = find_rule("DUP-003")
    tree = sqlglot.parse_one(
        "SELECT caiwei_norm(CAST(:v AS VARCHAR(200)), 'payee_name') AS k", read=SOURCE_DIALECT
    )
    params = {"ignore_chars": ignore, "suffixes": "、".join(suffixes), "prefixes": "、".join(prefixes)}
    return render(bind_normalizers(rule, tree, params), dialect)


@pytest.fixture(scope="module")
def server(db_url):  # noqa: F811
    engine = connect(db_url)
    yield engine
    engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(ALPHABET, max_size=24),
    ignore=st.text(ALPHABET, max_size=8),
    suffixes=AFFIXES,
    prefixes=AFFIXES,
)
def test_sql_normaliser_equals_the_python_reference(server, text, ignore, suffixes, prefixes):
    suffixes = [s for s in suffixes if s.strip() and "、" not in s]
    prefixes = [p for p in prefixes if p.strip() and "、" not in p]
    sql = _normalise_sql(server.dialect.name, ignore, suffixes, prefixes)
    with server.connect() as conn:
        got = conn.execute(sa.text(sql), {"v": text}).scalar()
    assert (got or "") == reference(text, ignore, suffixes, prefixes)


def test_default_lists_fold_the_sandbox_shapes():
    rule = find_rule("DUP-003")
    defaults = {p.name: p.default for p in rule.params}
    fold = lambda s: reference(s, defaults["ignore_chars"], defaults["suffixes"].split("、"), [])  # noqa: E731
    assert fold("王伟ＫＴ５科技有限公司") == fold("王伟KT5科技有限公司") == "王伟KT5科技"
    assert fold("张三（个人）") == fold("张三") and fold("王 伟科\u3000技公司") == fold(
        "王伟科技有限责任公司"
    )
    assert fold("王·伟科技股份有限公司。") == fold("王伟科技股份有限公司")
    assert fold("公司") == "公司"  # nothing left: not stripped


def test_every_engine_renders_the_rules_without_deep_nesting():
    """SQLite's parser gives up at about 35 nested calls: the normaliser is staged in CTEs, each of few REPLACEs."""
    for rule_id in RULES:
        planned = plan(find_rule(rule_id), as_of=AS_OF)
        for dialect in ("sqlite", "mysql", "postgresql", "oracle"):
            sql = render(planned.tree, dialect)
            depth, deepest = 0, 0
            for c in re.sub(r"'(?:[^'\\]|\\.|'')*'", "''", sql):
                depth += (c == "(") - (c == ")")
                deepest = max(deepest, depth)
            assert deepest < 30, (rule_id, dialect, deepest)
            assert "caiwei_norm" not in sql.lower() and "caiwei_day_diff" not in sql.lower()


def test_clean_payments_to_one_payee_of_one_amount_are_a_month_apart():
    """The generator's clean data: same unit, same payee (by account, or by name without its company suffix), same
    amount within 31 days → the later payment is a fen more, as often as needed; further apart, left alone."""
    from caiwei.sandbox.generator import Generator

    company = (("王伟科技有限公司", "A1", "演练银行"), "水费")
    renamed = (
        ("王伟科技股份有限公司", "A2", "演练银行"),
        "水费",
    )  # another account, the same name once stripped
    payments = [
        {"day": date(2026, 3, 1), "amount": 1000, "payee": company},
        {"day": date(2026, 3, 20), "amount": 1000, "payee": company},
        {"day": date(2026, 3, 5), "amount": 1000, "payee": renamed},
        {"day": date(2026, 5, 1), "amount": 1000, "payee": company},
        {"day": date(2026, 3, 2), "amount": 2000, "payee": company},
    ]
    Generator._keep_payments_apart([{"payments": payments[:2]}, {"payments": payments[2:]}])
    assert [p["amount"] for p in payments] == [1000, 1002, 1001, 1000, 2000]
