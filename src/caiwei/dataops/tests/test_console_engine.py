"""The console's review engine without a database: the rules of docs/dataops-console.md, derived from the logical
schema and its default classification (every classified column × every transformation × every way of reaching the
output × every dialect), not from a handful of examples."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.dataops import console
from caiwei.dataops.console import default_classification, logical_schema, mask_as, mask_shape, review

SCHEMA = logical_schema()
CLASSES = default_classification(SCHEMA)
CLASSIFIED = [(t, c, k) for t, cols in CLASSES.items() for c, k in cols.items()]
DIALECTS = ("postgresql", "mysql", "sqlite")

# Expressions that compute something new from a column: over a classified column each must be refused.
TRANSFORMS = (
    "upper({c})",
    "lower({c})",
    "substr({c}, 1, 8)",
    "left({c}, 8)",
    "right({c}, 8)",
    "reverse({c})",
    "replace({c}, '1', '7')",
    "lpad({c}, 40, '0')",
    "trim({c})",
    "length({c})",
    "concat({c}, '')",
    "concat_ws('-', {c}, 'x')",
    "cast({c} as char(40))",
    "case when {c} is null then 'a' else {c} end",
    "case when {c} like '1%' then 1 else 0 end",
    "coalesce(lower({c}), '')",
    "max(substr({c}, 2, 10))",
    "count(distinct upper({c}))",
    "{c} = 'x'",
    "{c} + 0",
    "{c} * 1",
    "ascii({c})",
    "regexp_replace({c}, '1', '2')",
)
# Expressions whose value is the column's own value: masked, never refused.
PASSES = ("{c}", "max({c})", "min({c})", "coalesce({c}, {c})", "nullif({c}, '')")
# Ways an expression reaches the output: directly, through a subquery, a CTE, a UNION ALL branch, alias chains,
# a scalar subquery, a lateral-free join.
WRAPPERS = (
    "SELECT {e} AS out FROM {t}",
    "SELECT s.out FROM (SELECT {e} AS out FROM {t}) s",
    "WITH w AS (SELECT {e} AS out FROM {t}) SELECT out FROM w",
    "WITH w(o) AS (SELECT {e} FROM {t}), v AS (SELECT o AS out FROM w) SELECT v.out FROM v",
    "SELECT NULL AS out UNION ALL SELECT {e} FROM {t}",
    "SELECT s2.o2 FROM (SELECT q.out AS o2 FROM (SELECT {e} AS out FROM {t}) q) s2",
)
OUTER = (  # a transformation applied outside a subquery that passes the column through
    "SELECT {f} AS out FROM (SELECT {c} AS {c} FROM {t}) s",
    "WITH w AS (SELECT {c} FROM {t}) SELECT {f} AS out FROM w",
)


def test_the_schema_has_every_class_to_test():
    assert {k for _, _, k in CLASSIFIED} >= {"id", "account", "name"}
    assert ("person_info", "iden_no", "id") in CLASSIFIED


def test_a_transformed_classified_column_is_refused_naming_it_wherever_it_reaches_the_output():
    wrong = []
    for table, column, _kind in CLASSIFIED:
        for transform in TRANSFORMS:
            expression = transform.format(c=column)
            queries = [w.format(e=expression, t=table) for w in WRAPPERS]
            queries += [o.format(f=expression, c=column, t=table) for o in OUTER]
            for sql in queries:
                for dialect in DIALECTS:
                    plan = review(sql, dialect, SCHEMA, CLASSES)
                    if plan.ok or column not in plan.reason:
                        wrong.append(f"{dialect}: {sql} → {getattr(plan, 'reason', '已放行')}")
    assert wrong == []


def test_a_classified_column_passed_through_comes_back_masked_by_its_kind():
    wrong = []
    for table, column, kind in CLASSIFIED:
        for passing in PASSES:
            expression = passing.format(c=column)
            for wrapper in WRAPPERS:
                sql = wrapper.format(e=expression, t=table)
                for dialect in DIALECTS:
                    plan = review(sql, dialect, SCHEMA, CLASSES)
                    if not plan.ok or plan.masked != {0: kind}:
                        wrong.append(
                            f"{dialect}: {sql} → {getattr(plan, 'reason', plan.masked if plan.ok else '')}"
                        )
    assert wrong == []


def test_the_same_expressions_over_unclassified_columns_are_allowed():
    """The refusals above are about classification, not the functions: a plain column takes every transform."""
    wrong = []
    for table, column in (
        ("person_info", "agency_code"),
        ("pay_voucher", "use_des"),
        ("sys_user", "user_code"),
    ):
        for transform in TRANSFORMS:
            sql = WRAPPERS[1].format(e=transform.format(c=column), t=table)
            plan = review(sql, "postgresql", SCHEMA, CLASSES)
            if not plan.ok or plan.masked:
                wrong.append(f"{sql} → {getattr(plan, 'reason', plan.masked if plan.ok else '')}")
    assert wrong == []


CONDITIONS_REFUSED = (
    "WHERE {c} LIKE '1%'",
    "WHERE {c} > '5'",
    "WHERE {c} BETWEEN '1' AND '2'",
    "WHERE substr({c}, 1, 6) = '110101'",
    "WHERE {c} <> 'x'",
    "WHERE {c} = agency_code",
    "WHERE {c} IN (SELECT agency_code FROM ele_agency)",
    "WHERE agency_code IN (SELECT {c} FROM {t})",
    "ORDER BY {c}",
    "GROUP BY {c}",
    "GROUP BY agency_code HAVING max({c}) > '1'",
)
CONDITIONS_ALLOWED = (
    "WHERE {c} = '110101199001011234'",
    "WHERE {c} IN ('a', 'b')",
    "WHERE {c} IS NULL",
    "WHERE {c} = :known",
    "WHERE NOT ({c} = 'x') AND agency_code LIKE '1%'",
)


def test_a_classified_column_outside_the_output_is_only_compared_for_equality_with_constants():
    wrong = []
    for table, column, _ in CLASSIFIED:
        if "agency_code" not in SCHEMA[table]:
            continue
        for cond in CONDITIONS_REFUSED:
            sql = f"SELECT agency_code FROM {table} " + cond.format(c=column, t=table)
            plan = review(sql, "postgresql", SCHEMA, CLASSES)
            if plan.ok or column not in plan.reason:
                wrong.append(f"应拒绝：{sql}")
        for cond in CONDITIONS_ALLOWED:
            sql = f"SELECT agency_code FROM {table} " + cond.format(c=column, t=table)
            plan = review(sql, "postgresql", SCHEMA, CLASSES, params={"known": "x"})
            if not plan.ok:
                wrong.append(f"应放行：{sql} → {plan.reason}")
        for window in ("PARTITION BY {c}", "ORDER BY {c}"):
            sql = f"SELECT row_number() OVER ({window.format(c=column)}) FROM {table}"
            if review(sql, "postgresql", SCHEMA, CLASSES).ok:
                wrong.append(f"应拒绝：{sql}")
    assert wrong == []


def test_select_star_is_expanded_from_the_schema_and_masks_exactly_the_classified_columns():
    for table, columns in SCHEMA.items():
        for sql in (
            f"SELECT * FROM {table}",
            f"SELECT x.* FROM {table} x",
            f"SELECT * FROM (SELECT * FROM {table}) s",
        ):
            plan = review(sql, "postgresql", SCHEMA, CLASSES)
            assert plan.ok, plan
            assert plan.columns == columns and "*" not in plan.sql
            expected = {i: CLASSES[table][c] for i, c in enumerate(columns) if c in CLASSES.get(table, {})}
            assert plan.masked == expected, sql


def test_only_the_granted_tables_and_nothing_schema_qualified():
    granted = {"pay_voucher", "ele_agency"}
    for table in SCHEMA:
        plan = review(f"SELECT count(*) FROM {table}", "postgresql", SCHEMA, CLASSES, tables=granted)
        assert plan.ok == (table in granted), table
    for sql in (
        "SELECT * FROM public.pay_voucher",
        "SELECT * FROM pg_catalog.pg_user",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM generate_series(1, 3)",
        "WITH pay_voucher AS (SELECT * FROM person_info) SELECT * FROM pay_voucher",
    ):
        assert not review(sql, "postgresql", SCHEMA, CLASSES, tables=granted).ok, sql


WRITES = (
    "INSERT INTO sys_role VALUES ('a', 'b', NULL)",
    "UPDATE sys_role SET role_name = 'x'",
    "DELETE FROM sys_role",
    "DROP TABLE sys_role",
    "CREATE TABLE t AS SELECT 1",
    "SELECT 1; SELECT 2",
    "SELECT * INTO t2 FROM sys_role",
    "SELECT * FROM sys_role FOR UPDATE",
    "WITH d AS (DELETE FROM sys_role RETURNING *) SELECT * FROM d",
    "COPY sys_role TO '/tmp/x'",
    "SELECT pg_sleep(1)",
    "SELECT set_config('a', 'b', false)",
    "SELECT nextval('s')",
    "SET TRANSACTION READ WRITE",
    "CALL p()",
    "",
    "SELECT",
    "SELECT 1 /*! , sleep(1) */",
)


@pytest.mark.parametrize("sql", WRITES)
def test_anything_but_one_read_only_select_is_refused_before_the_database(sql):
    for dialect in DIALECTS:
        plan = review(sql, dialect, SCHEMA, CLASSES)
        assert not plan.ok and re.search(r"[\u4e00-\u9fff]", plan.reason), (dialect, sql)


def test_what_runs_is_the_reviewed_tree_without_comments():
    plan = review(
        "SELECT agency_code /* ; DROP TABLE x */ FROM ele_agency -- tail", "postgresql", SCHEMA, CLASSES
    )
    assert plan.ok and "DROP" not in plan.sql and "--" not in plan.sql and "/*" not in plan.sql


def test_every_allowed_function_is_a_function_the_rule_allowlist_knows():
    from caiwei.checks.custom import ALLOWED_FUNCTIONS

    assert {
        "CURRENT_VERSION",
        "NTH_VALUE",
        "PERCENT_RANK",
        "CUME_DIST",
        "ANY_VALUE",
    } >= console.CONSOLE_FUNCTIONS - ALLOWED_FUNCTIONS


# --- masking ----------------------------------------------------------------------------------------------------

ids = st.builds(
    lambda d, last: d + last,
    st.text("0123456789", min_size=17, max_size=17),
    st.sampled_from(list("0123456789X")),
)
mobiles = st.builds(
    lambda a, b: "1" + a + b, st.sampled_from("3456789"), st.text("0123456789", min_size=9, max_size=9)
)
accounts = st.text("0123456789", min_size=16, max_size=19)
filler = st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=8)


def substrings(value: str, n: int = 8) -> set[str]:
    return {value[i : i + n] for i in range(len(value) - n + 1)}


@settings(max_examples=300, deadline=None)
@given(st.one_of(ids, mobiles, accounts), filler, filler)
def test_the_second_lock_masks_any_number_shaped_run_in_any_cell(secret, before, after):
    masked, hit = mask_shape(before + secret + after)
    assert hit
    assert secret not in masked
    if len(secret) >= 16:
        assert not any(s in masked for s in substrings(secret))


@settings(max_examples=200, deadline=None)
@given(st.one_of(ids, accounts))
def test_masked_ids_and_accounts_keep_no_eight_characters_of_the_value(value):
    for kind in ("id", "account"):
        masked = mask_as(kind, value)
        assert len(masked) == len(value)
        assert not any(s in masked for s in substrings(value))


def test_names_and_secrets_keep_at_most_the_first_character():
    assert mask_as("name", "欧阳某某") == "欧***"
    assert mask_as("secret", "abc") == "******"
    assert mask_as("phone", "13800001234") == "138****1234"
