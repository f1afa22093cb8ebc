"""Property tests of the schema_derived rules (issue 11 §4), independent of the sandbox's fault injector: take a clean
sandbox, pick a constraint of the model at random, break a randomly chosen row by direct SQL derived from that
constraint (a dangling or disagreeing reference, a flipped sign or a third decimal, a date out of its window or
order, an unknown or non-leaf code, a code disabled, of another year or outside its validity on the date of use, a
payee account of a kind that may not receive the payment, a deleted or inflated record of a flow), then run the
generated rules and assert:
the constraint's own rule flags exactly the broken rows, and no rule flags a row outside the broken rows and the rows
linked to them by the model (one reference, flow or code away; two through an intermediate table).

Nothing here comes from the injector: only a clean sandbox is generated, and every mutation is derived from the
model in checks/schema/model.py. Runs on SQLite (each example on a fresh copy made with the backup API).
"""

import sqlite3
from datetime import date, timedelta

import pytest
import sqlglot
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from caiwei.checks.runner import Options, run_url
from caiwei.checks.schema import generate as gen
from caiwei.checks.schema import model as m
from caiwei.sandbox.generator import GenerateSpec, generate

AS_OF = date(2026, 12, 31)
GENERATED = gen.generate()
PLANNED = []  # filled by the clean_db fixture (needs the loaded pack)


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("properties")
    path = folder / "clean.sqlite3"
    generate(f"sqlite:///{path}", GenerateSpec(payments=400, seed=13, regions="152500000:1"))
    outcomes = run_url(f"sqlite:///{path}", _rules(), Options(as_of=AS_OF))
    assert [(o.rule.id, o.count) for o in outcomes if o.count or o.error] == []
    PLANNED[:] = _planned()
    assert flagged(path) == {}
    return path, folder / "work.sqlite3"


def flagged(path) -> dict[str, set[tuple[str, str]]]:
    """Rule id → {(key table, first key)} of the rows each generated rule returns: the rule's SQL as the engine
    plans and renders it for SQLite, run directly (the runner itself is covered by test_schema_rules)."""
    conn = sqlite3.connect(path)
    try:
        found = {}
        for rule, sql, params, table in PLANNED:
            cursor = conn.execute(sql, params)
            index = [d[0] for d in cursor.description].index(rule.key[0])
            found[rule.id] = {(table, str(row[index])) for row in cursor}
        return {k: v for k, v in found.items() if v}
    finally:
        conn.close()


def _planned():
    from caiwei.checks.sqlplan import plan, render
    from caiwei.checks.truth import key_table

    result = []
    for rule in _rules():
        p = plan(rule, as_of=AS_OF)
        result.append((rule, render(p.tree, "sqlite"), p.params, key_table(rule)))
    return result


def _rules():
    from caiwei.checks.engine import shipped_packs

    return list(shipped_packs()[gen.PACK].rules)


def _key(table: str) -> str:
    return m.TABLES[table].key if table in m.TABLES else "code"


# --- links of the model: (table a, column a, table b, column b) with a.column a = b.column b ---------------------


def _all(cls, base: tuple) -> tuple:
    """The model's constraints of a class: the base list and those of the later sections."""
    return (*base, *(c for _, cs in m.MODEL.sections for c in cs if isinstance(c, cls)))


def _links() -> tuple[list[tuple[str, str, str, str]], list[tuple[tuple, tuple]]]:
    direct, via_pairs = [], []
    for ref in _all(m.Ref, m.REFS):
        pkey = ref.parent_key or m.TABLES[ref.parent].key
        if ref.via:
            first = (ref.child, ref.column, ref.via.table, ref.via.key)
            second = (ref.via.table, ref.via.to, ref.parent, pkey)
            direct += [first, second]
            via_pairs.append((first, second))
        else:
            direct.append((ref.child, ref.column, ref.parent, pkey))
    direct += [(f.parent, f.on[0], f.child, f.on[1]) for f in _all(m.Flow, m.FLOWS)]
    direct += [(o.child, o.on[0], o.parent, o.on[1]) for o in _all(m.DateOrder, m.DATE_ORDERS)]
    direct += [(c.table, c.column, c.element, "code") for c in _all(m.Code, m.CODES)]
    direct += [(t.table, "parent_code", t.table, "code") for t in _all(m.CodeTree, m.CODE_TREES)]
    direct += [
        ("pay_voucher", "bgt_id", "ba_bgt_info", "bgt_id"),
        ("pay_plan_voucher", "bgt_id", "ba_bgt_info", "bgt_id"),
    ]
    return direct, via_pairs


LINKS, VIA_PAIRS = _links()


def _less(path) -> set[tuple[str, str, object]]:
    """(parent table, key, amount) of every flow's subtracted part (Flow.less, e.g. refunds per indicator): a row
    that changes it reaches the parent through more than one table, so the parents whose part changed may be flagged."""
    conn = sqlite3.connect(path)
    try:
        out = set()
        for f in _all(m.Flow, m.FLOWS):
            if f.less:
                sql = sqlglot.transpile(f.less, read="postgres", write="sqlite")[0]
                out |= {(f.parent, str(k), v) for k, v in conn.execute(sql, {"as_of": AS_OF.isoformat()})}
        return out
    finally:
        conn.close()


def _row(conn, table: str, rowid: int) -> dict | None:
    cur = conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,))  # noqa: S608
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None


def _linked(conn, table: str, values: dict, links) -> set[tuple[str, str]]:
    out = set()
    for a, ca, b, cb in links:
        for here, col, there, other in ((a, ca, b, cb), (b, cb, a, ca)):
            if here == table and values.get(col) is not None:
                sql = f"SELECT {_key(there)} FROM {there} WHERE {other} = ?"  # noqa: S608
                out |= {(there, str(r[0])) for r in conn.execute(sql, (values[col],))}
    return out


def _neighbourhood(conn, table: str, before: dict | None, after: dict | None) -> set[tuple[str, str]]:
    rows = set()
    for values in (before, after):
        if not values:
            continue
        rows.add((table, str(values[_key(table)])))
        near = _linked(conn, table, values, LINKS)
        rows |= near
        for first, second in VIA_PAIRS:  # two hops through the intermediate table of a via reference
            for there, key in list(near):
                if there == first[2] or there == second[0]:
                    mid = conn.execute(f"SELECT * FROM {there} WHERE {_key(there)} = ?", (key,))  # noqa: S608
                    cols = [d[0] for d in mid.description]
                    for r in mid.fetchall():
                        rows |= _linked(conn, there, dict(zip(cols, r, strict=True)), [first, second])
        for u in m.UNIQUES:  # rows sharing a natural key with the broken row
            if u.table == table:
                where = " AND ".join(f"{c} = ?" for c in u.columns)
                sql = f"SELECT {_key(table)} FROM {table} WHERE {where}"  # noqa: S608
                rows |= {(table, str(r[0])) for r in conn.execute(sql, [values[c] for c in u.columns])}
    return rows


# --- mutations derived from each kind of constraint ----------------------------------------------------------------


class Skip(Exception):
    """No row fits this mutation in the sample (e.g. no non-leaf code): hypothesis discards the example."""


def _pick(conn, data, sql: str, params=()) -> tuple:
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        raise Skip
    return rows[data.draw(st.integers(0, len(rows) - 1), label="row")]


def _day(text: str, days: int) -> str:
    return (date.fromisoformat(str(text)[:10]) + timedelta(days=days)).isoformat()


def _update(conn, table: str, rowid: int, assignments: dict) -> None:
    sets = ", ".join(f"{c} = ?" for c in assignments)
    conn.execute(f"UPDATE {table} SET {sets} WHERE rowid = ?", [*assignments.values(), rowid])  # noqa: S608


def mutate(conn, data, g: gen.Generated):
    """Break one constraint; returns (table, rowid, the rule's expected flagged rows, extra rows touched)."""
    c = g.constraint
    if isinstance(c, m.Ref):
        variants = (["dangling"] if not c.via else []) + (["agree"] if c.agree else [])
        variant = data.draw(st.sampled_from(variants), label="ref")
        if variant == "dangling":
            (rowid,) = _pick(
                conn, data, f"SELECT rowid FROM {c.child} WHERE {c.column} IS NOT NULL ORDER BY rowid"
            )
            _update(conn, c.child, rowid, {c.column: "ZZ9"})
            return c.child, rowid, None, set()
        cc, pc = data.draw(st.sampled_from(c.agree), label="agree")
        (rowid, current) = _pick(
            conn, data, f"SELECT rowid, {cc} FROM {c.child} WHERE {c.column} IS NOT NULL ORDER BY rowid"
        )
        others = [
            r[0]
            for r in conn.execute(f"SELECT DISTINCT {pc} FROM {c.parent} WHERE {pc} IS NOT NULL ORDER BY 1")  # noqa: S608
            if r[0] != current
        ]
        if not others:
            if not isinstance(current, int):
                raise Skip
            others = [current + 1]
        _update(conn, c.child, rowid, {cc: data.draw(st.sampled_from(others), label="value")})
        return c.child, rowid, None, set()
    if isinstance(c, m.Amount):
        table, col = c.table, c.column
        (rowid,) = _pick(conn, data, f"SELECT rowid FROM {table} WHERE {col} IS NOT NULL ORDER BY rowid")
        if data.draw(st.booleans(), label="scale"):
            conn.execute(f"UPDATE {table} SET {col} = {col} + 0.001 WHERE rowid = ?", (rowid,))  # noqa: S608
        else:
            conn.execute(f"UPDATE {table} SET {col} = -ABS({col}) - 1 WHERE rowid = ?", (rowid,))  # noqa: S608
        return table, rowid, None, set()
    if isinstance(c, m.RowRelation):
        (rowid,) = _pick(conn, data, f"SELECT rowid FROM {c.table} WHERE {c.left} IS NOT NULL ORDER BY rowid")
        value = f"{c.left} + 1" if c.op == "=" else f"{c.right} + 1"
        conn.execute(f"UPDATE {c.table} SET {c.left} = {value} WHERE rowid = ?", (rowid,))  # noqa: S608
        return c.table, rowid, None, set()
    if isinstance(c, m.DateRule):
        variants = (["year"] if c.in_year else []) + (["as_of"] if c.not_after_as_of else []) + list(c.after)
        variant = data.draw(st.sampled_from(variants), label="date")
        other = variant if variant in c.after else c.column
        year = ", fiscal_year" if c.in_year else ""
        rowid, value, *fy = _pick(
            conn,
            data,
            f"SELECT rowid, {other}{year} FROM {c.table} WHERE {c.column} IS NOT NULL AND {other} IS NOT NULL ORDER BY rowid",
        )
        new = {"year": f"{(fy or [2026])[0] - 1}-12-31", "as_of": _day(AS_OF.isoformat(), 7)}.get(variant)
        _update(conn, c.table, rowid, {c.column: new or _day(value, -1)})
        return c.table, rowid, None, set()
    if isinstance(c, m.DateOrder):
        rowid, pvalue = _pick(
            conn,
            data,
            f"SELECT x.rowid, y.{c.parent_column} FROM {c.child} x JOIN {c.parent} y ON y.{c.on[1]} = x.{c.on[0]}"
            f" WHERE y.{c.parent_column} IS NOT NULL ORDER BY x.rowid",
        )
        if c.op == "month":
            new = date(2026, pvalue % 12 + 1, 15).isoformat()
        else:
            new = _day(pvalue, -1 if c.op == ">=" else 1)
        _update(conn, c.child, rowid, {c.column: new})
        return c.child, rowid, None, set()
    if isinstance(c, m.Code):
        (rowid,) = _pick(conn, data, f"SELECT rowid FROM {c.table} ORDER BY rowid")
        nonleaf = [
            r[0] for r in conn.execute(f"SELECT code FROM {c.element} WHERE is_leaf = 0 ORDER BY code")
        ]  # noqa: S608
        values = ["X9", *nonleaf] if c.leaf else ["X9"]
        _update(conn, c.table, rowid, {c.column: data.draw(st.sampled_from(values), label="code")})
        return c.table, rowid, None, set()
    if isinstance(c, m.CodeValid):
        # Break the element row the picked row uses: disable it, move it to another year, or end its validity
        # before the row's date of use. Every row of the table using that code on such a date is then flagged.
        variants = ["enabled", "year"] + (["window"] if c.date else [])
        variant = data.draw(st.sampled_from(variants), label="validity")
        date_col = f", {c.date}" if c.date else ""
        _, code, *used = _pick(
            conn,
            data,
            f"SELECT rowid, {c.column}{date_col} FROM {c.table} WHERE {c.column} IS NOT NULL ORDER BY rowid",
        )
        (erowid,) = conn.execute(f"SELECT rowid FROM {c.element} WHERE code = ?", (code,)).fetchone()  # noqa: S608
        where, params = f"{c.column} = ?", [code]
        if variant == "enabled":
            _update(conn, c.element, erowid, {"is_enabled": 0})
        elif variant == "year":
            conn.execute(f"UPDATE {c.element} SET fiscal_year = fiscal_year - 1 WHERE rowid = ?", (erowid,))  # noqa: S608
        else:
            end = _day(used[0], -1)
            _update(conn, c.element, erowid, {"end_date": end})
            where, params = f"{where} AND {c.date} > ?", [code, end]
        key = m.TABLES[c.table].key
        expected = {
            (c.table, str(r[0])) for r in conn.execute(f"SELECT {key} FROM {c.table} WHERE {where}", params)
        }  # noqa: S608
        return c.element, erowid, expected, set()
    if isinstance(c, m.AccountKind):
        # Turn the payee master row of a payment the kind may not receive into an account of that kind.
        denied = " OR ".join(f"SUBSTR(p.dep_bgt_eco_code, 1, {len(d)}) = '{d}'" for d in c.denied)
        rowid, acct = _pick(
            conn,
            data,
            "SELECT DISTINCT y.rowid, y.payee_acct_no FROM pay_payee_info y"
            f" JOIN pay_voucher p ON p.payee_acct_no = y.payee_acct_no WHERE ({denied}) ORDER BY y.rowid",
        )
        _update(conn, "pay_payee_info", rowid, {"acct_kind": c.kind})
        expected = {
            ("pay_voucher", r[0])
            for r in conn.execute(
                f"SELECT p.pay_app_id FROM pay_voucher p WHERE p.payee_acct_no = ? AND ({denied})",
                (acct,),  # noqa: S608
            )
        }
        return "pay_payee_info", rowid, expected, set()
    if isinstance(c, m.PayOutOnly):
        # Name an account of that kind as a payment's payee.
        (rowid,) = _pick(conn, data, "SELECT rowid FROM pay_voucher ORDER BY rowid")
        accounts = [
            r[0]
            for r in conn.execute(
                f"SELECT {c.column} FROM {c.table} WHERE {c.kind_column} = ? ORDER BY 1",  # noqa: S608
                (c.kind,),
            )
        ]
        _update(
            conn, "pay_voucher", rowid, {"payee_acct_no": data.draw(st.sampled_from(accounts), label="acct")}
        )
        return "pay_voucher", rowid, None, set()
    if isinstance(c, m.CodeTree):
        rowid, code = _pick(conn, data, f"SELECT rowid, code FROM {c.table} ORDER BY rowid")
        conn.execute(f"UPDATE {c.table} SET level_no = level_no + 5 WHERE rowid = ?", (rowid,))  # noqa: S608
        children = {
            (c.table, r[0])
            for r in conn.execute(f"SELECT code FROM {c.table} WHERE parent_code = ?", (code,))
        }  # noqa: S608
        return c.table, rowid, {(c.table, code), *children}, set()
    if isinstance(c, m.Enum):
        (rowid,) = _pick(conn, data, f"SELECT rowid FROM {c.table} ORDER BY rowid")
        bad = "XX" if isinstance(c.values[0], str) else 97
        _update(conn, c.table, rowid, {c.column: bad})
        return c.table, rowid, None, set()
    if isinstance(c, m.Flow):
        variants = (["delete"] if c.count else []) + (["bump"] if c.sum_child else [])
        variant = data.draw(st.sampled_from(variants), label="flow")
        parent_col = f", y.{c.sum_parent}" if c.sum_parent else ""
        rowid, pkey, *pvalue = _pick(
            conn,
            data,
            f"SELECT x.rowid, y.{m.TABLES[c.parent].key}{parent_col} FROM {c.child} x"
            f" JOIN {c.parent} y ON y.{c.on[0]} = x.{c.on[1]}"
            + (f" WHERE y.{c.sum_parent} IS NOT NULL" if c.sum_parent else "")
            + " ORDER BY x.rowid",
        )
        expected = {(c.parent, str(pkey))}
        if variant == "delete":
            before = _row(conn, c.child, rowid)
            conn.execute(f"DELETE FROM {c.child} WHERE rowid = ?", (rowid,))  # noqa: S608
            return c.child, rowid, expected, _neighbourhood(conn, c.child, before, None)
        bump = "1" if c.sum_op == "=" else f"{abs(pvalue[0]) + 1}"
        conn.execute(f"UPDATE {c.child} SET {c.sum_child} = {c.sum_child} + {bump} WHERE rowid = ?", (rowid,))  # noqa: S608
        return c.child, rowid, expected, set()
    if isinstance(c, m.Unique):
        cols = ", ".join(c.columns)
        rows = conn.execute(
            f"SELECT rowid, {m.TABLES[c.table].key}, {cols} FROM {c.table} ORDER BY rowid"
        ).fetchall()  # noqa: S608
        if len(rows) < 2:
            raise Skip
        i = data.draw(st.integers(0, len(rows) - 1), label="row")
        j = data.draw(st.integers(0, len(rows) - 2), label="other")
        j += j >= i
        _update(conn, c.table, rows[i][0], dict(zip(c.columns, rows[j][2:], strict=True)))
        return c.table, rows[i][0], {(c.table, str(rows[i][1])), (c.table, str(rows[j][1]))}, set()
    if isinstance(c, m.PlanControl) and g.data["_table"] == "pay_voucher":
        (rowid,) = _pick(conn, data, "SELECT rowid FROM pay_voucher WHERE plan_id IS NOT NULL ORDER BY rowid")
        _update(conn, "pay_voucher", rowid, {"plan_id": None})
        return "pay_voucher", rowid, None, set()
    if isinstance(c, m.PlanControl):
        (rowid, bgt_id) = _pick(
            conn, data, "SELECT rowid, bgt_id FROM ba_bgt_info WHERE is_plan_control = 1 ORDER BY rowid"
        )
        _update(conn, "ba_bgt_info", rowid, {"is_plan_control": 0})
        plans = {
            ("pay_plan_voucher", r[0])
            for r in conn.execute("SELECT plan_id FROM pay_plan_voucher WHERE bgt_id = ?", (bgt_id,))
        }
        if not plans:
            raise Skip
        return "ba_bgt_info", rowid, plans, set()
    if isinstance(c, m.CarryYear):
        (rowid,) = _pick(conn, data, "SELECT rowid FROM ba_bgt_carryovers ORDER BY rowid")
        conn.execute("UPDATE ba_bgt_carryovers SET next_year = next_year + 1 WHERE rowid = ?", (rowid,))
        return "ba_bgt_carryovers", rowid, None, set()
    raise AssertionError(f"no mutation for {g.id}")


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run of the CI
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_generated_rules_flag_exactly_the_rows_broken_against_the_model(clean_db, data):
    clean, work = clean_db
    g = data.draw(st.sampled_from(GENERATED), label="constraint")
    source, target = sqlite3.connect(clean), sqlite3.connect(work)
    source.backup(target)
    source.close()
    target.close()
    conn = sqlite3.connect(work)
    try:
        try:
            table, rowid, expected, touched = mutate(conn, data, g)
        except (Skip, sqlite3.IntegrityError):  # no fitting row, or the database enforces it itself
            assume(False)
        conn.commit()
        source = sqlite3.connect(clean)
        before = _row(source, table, rowid)
        source.close()
        after = _row(conn, table, rowid)
        if expected is None:
            expected = {(table, str(after[_key(table)]))}
        allowed = expected | touched | _neighbourhood(conn, table, before, after)
    finally:
        conn.close()
    allowed |= {(t, k) for t, k, _ in _less(clean) ^ _less(work)}
    found = flagged(work)
    assert found.get(g.id, set()) == expected, (g.id, g.data["title"])
    stray = {rule: keys - allowed for rule, keys in found.items() if keys - allowed}
    assert stray == {}, (g.id, g.data["title"])
