"""The check runner 检查执行: plain Python over SQLAlchemy Core, pushed down to the target database.

For a list of rules it counts failures with as few scans as possible (rules over the same tables share one
aggregate query), then — unless switched off — fetches each failing rule's rows up to a cap: their keys for the
diff (masked where they classify as sensitive, mask.py) and the first few, masked, as the sample. Every statement runs in a read-only session under a statement
timeout; nothing pulls a whole table into Python.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from .engine import Rule, RuleError
from .mask import aliases_of, mask_key, mask_row, mask_value, plain
from .sqlplan import (
    AMOUNT_COLUMN,
    COUNT_COLUMN,
    Mapping,
    Planned,
    Scope,
    agency_names_query,
    count_queries,
    counted_rows_query,
    group_rows_query,
    groupable,
    plan,
    rows_query,
    units_query,
)

Progress = Callable[[int, int, str], None]
UNITS_SHOWN = 20


@functools.cache
def logical_columns() -> dict[str, set[str]]:
    """The logical tables and their columns (DOMAIN.md), as the sandbox defines them."""
    from ..sandbox.schema import metadata

    return {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}


@dataclass
class Options:
    as_of: date
    scope: Scope = field(default_factory=Scope)
    sample: bool = True
    sample_size: int = 20
    key_cap: int = 10_000
    timeout_s: int = 300
    combine: bool = True
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # rule id → parameter overrides


@dataclass
class Outcome:
    rule: Rule
    count: int | None = None
    amount: str | None = None
    keys: list[list] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    units: list[dict] = field(default_factory=list)  # failing rows per budget unit, most first
    keys_truncated: bool = False
    sql: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "id": self.rule.id,
            "title": self.rule.title,
            "pack": self.rule.pack,
            "severity": self.rule.severity,
            "count": self.count,
            "amount": self.amount,
            "keys": self.keys,
            "keys_truncated": self.keys_truncated,
            "sample": self.sample,
            "units": self.units,
            "sql": self.sql,
            "params": self.params,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


CONNECT_TIMEOUT_S = 15
DRIVER_ALIASES = {  # as the sandbox generator reads URLs (postgres://, mysql://…)
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def connect(url: str) -> sa.Engine:
    """An engine for a target: no pool (a run holds one connection for its whole life); a server that does not answer
    is given up after CONNECT_TIMEOUT_S seconds (测试连接 must not hang on a host that swallows packets)."""
    parsed = sa.engine.make_url(url)  # kept as a URL: str() of a URL would mask its password as ***
    if parsed.drivername in DRIVER_ALIASES:
        parsed = parsed.set(drivername=DRIVER_ALIASES[parsed.drivername])
    backend = parsed.get_backend_name()
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if backend in ("postgresql", "mysql", "mariadb") else {}
    return sa.create_engine(parsed, poolclass=NullPool, connect_args=args)


@contextmanager
def read_only(engine: sa.Engine, timeout_s: int) -> Iterator[sa.Connection]:
    """A connection whose every statement is read-only and cut off after ``timeout_s`` seconds."""
    name = engine.dialect.name
    with engine.connect() as conn:
        if name == "postgresql":
            conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET statement_timeout = {int(timeout_s * 1000)}")
        elif name in ("mysql", "mariadb"):
            conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
            if conn.dialect._is_mariadb:  # noqa: SLF001
                conn.exec_driver_sql(f"SET SESSION max_statement_time = {int(timeout_s)}")
            else:
                conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout_s * 1000)}")
        elif name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
            raw = conn.connection.dbapi_connection
            deadline = [0.0]

            def interrupt() -> int:
                return 1 if time.monotonic() > deadline[0] else 0

            raw.set_progress_handler(interrupt, 10_000)
            conn.info["deadline"] = deadline
        elif name == "oracle":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.commit()
        yield conn


def _execute(conn: sa.Connection, sql: str, params: dict, timeout_s: int) -> sa.CursorResult:
    if "deadline" in conn.info:
        conn.info["deadline"][0] = time.monotonic() + timeout_s
    return conn.execute(sa.text(sql), params)


def explain_error(exc: Exception, timeout_s: int) -> str:
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
    lowered = text.lower()
    if any(
        w in lowered
        for w in ("statement timeout", "canceling statement", "interrupted", "max_statement_time")
    ):
        return f"执行超时（超过 {timeout_s} 秒）"
    if any(
        w in lowered
        for w in ("no such table", "does not exist", "doesn't exist", "unknown column", "no such column")
    ):
        return f"表或列不存在，请检查目标库的映射：{text}"
    return f"执行失败：{text}"


def _money(value: Any) -> str | None:
    if value is None:
        return None
    return format(Decimal(str(value)).quantize(Decimal("0.01")), "f")


def run_rules(
    engine: sa.Engine,
    rules: list[Rule],
    options: Options,
    mapping: Mapping | None = None,
    progress: Progress | None = None,
) -> list[Outcome]:
    dialect = engine.dialect.name
    outcomes: dict[str, Outcome] = {}
    planned: list[Planned] = []
    for rule in rules:
        try:
            p = plan(
                rule,
                as_of=options.as_of,
                scope=options.scope,
                mapping=mapping,
                known=logical_columns(),
                overrides=options.params.get(rule.id),
            )
        except RuleError as exc:
            outcomes[rule.id] = Outcome(rule, error=str(exc))
            continue
        planned.append(p)
        outcomes[rule.id] = Outcome(rule, sql=p.listing(dialect), params=p.params)
    queries = count_queries(planned, dialect, combine=options.combine)
    if options.sample:
        # A rule counted alone is run once for both its count and its rows (a window count); rules sharing a
        # scan are counted together, then only the failing ones are fetched.
        shared = [q for q in queries if len(q.rules) > 1]
        alone = [q.rules[0] for q in queries if len(q.rules) == 1]
    else:
        shared, alone = queries, []
    steps = len(shared) + len(alone) + (sum(len(q.rules) for q in shared) if options.sample else 0)
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, steps, what)

    with read_only(engine, options.timeout_s) as conn:
        for query in shared:
            _count(conn, query, outcomes, options.timeout_s, dialect)
            step("、".join(p.rule.id for p in query.rules))
        for p in alone:
            _fetch_rows(conn, p, outcomes[p.rule.id], options, dialect, mapping, counted=True)
            step(p.rule.id)
        if options.sample:
            for query in shared:
                failing = [p for p in query.rules if outcomes[p.rule.id].count]
                together = [
                    p for p in failing if outcomes[p.rule.id].count <= options.key_cap and groupable(p)
                ]
                if len(together) < 2:
                    together = []
                if together:
                    _fetch_group_rows(conn, together, outcomes, options, dialect, mapping)
                for p in failing:
                    if p not in together:
                        _fetch_rows(conn, p, outcomes[p.rule.id], options, dialect, mapping)
                for p in query.rules:
                    step(p.rule.id)
    return [outcomes[r.id] for r in rules]


def _count(conn, query, outcomes: dict[str, Outcome], timeout_s: int, dialect: str) -> None:
    started = time.monotonic()
    try:
        row = _execute(conn, query.sql, query.params, timeout_s).mappings().one()
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        if len(query.rules) > 1:  # one bad rule must not hide the others: count them one by one
            for p in query.rules:
                _count(conn, count_queries([p], dialect, combine=False)[0], outcomes, timeout_s, dialect)
        else:
            outcomes[query.rules[0].rule.id].error = explain_error(exc, timeout_s)
        return
    share = (time.monotonic() - started) / len(query.rules)
    for p, (count_col, amount_col) in zip(query.rules, query.columns, strict=True):
        outcome = outcomes[p.rule.id]
        outcome.count = int(row[count_col] or 0)
        outcome.amount = _money(row[amount_col]) if amount_col else None
        outcome.seconds += share


class _Collector:
    """Takes one rule's failing rows as they stream in: keys, the masked sample, per-unit totals."""

    def __init__(self, p: Planned, outcome: Outcome, options: Options, columns: list[str], mapping=None):
        self.p, self.outcome, self.options, self.columns = p, outcome, options, columns
        self.aliases = aliases_of(mapping)
        self.key_index = [columns.index(k.lower()) for k in p.rule.key]
        self.unit_index = columns.index("agency_code") if "agency_code" in columns else None
        self.amount_index = columns.index(p.rule.amount.lower()) if p.rule.amount else None
        self.units: dict = {}
        outcome.columns = columns

    def add(self, row: tuple) -> None:
        outcome = self.outcome
        outcome.keys.append([mask_key(self.columns[i], row[i], self.aliases) for i in self.key_index])
        if len(outcome.sample) < self.options.sample_size:
            outcome.sample.append(mask_row(self.columns, row, self.aliases))
        if self.unit_index is not None:
            unit = self.units.setdefault(row[self.unit_index], [0, Decimal(0)])
            unit[0] += 1
            if self.amount_index is not None and row[self.amount_index] is not None:
                unit[1] += Decimal(str(row[self.amount_index]))

    def finish(self, conn, dialect: str, mapping) -> None:
        outcome = self.outcome
        outcome.keys_truncated = (outcome.count or 0) > len(outcome.keys)
        if self.units and not outcome.keys_truncated:
            _name_units(conn, outcome, self.units, self.options, dialect, mapping)
        elif self.units:
            _fetch_units(conn, self.p, outcome, self.options, dialect, mapping)


def _fetch_rows(
    conn, p: Planned, outcome: Outcome, options: Options, dialect: str, mapping, counted=False
) -> None:
    """Keys of the failing rows (capped) and the first few as the masked sample; per budget unit when the rule
    reports one. With ``counted`` the same query also yields the count and the money involved."""
    started = time.monotonic()
    if counted:
        sql = counted_rows_query(p, dialect, options.key_cap)
    else:  # the count is known: the database may stop scanning once it has found the last failing row
        sql = rows_query(p, dialect, min(options.key_cap, outcome.count or options.key_cap))
    try:
        result = _execute(conn, sql, p.params, options.timeout_s)
        columns = [c.lower() for c in result.keys()]  # noqa: SIM118  (a result, not a dict)
        shown = [i for i, c in enumerate(columns) if c not in (COUNT_COLUMN, AMOUNT_COLUMN)]
        collector = _Collector(p, outcome, options, [columns[i] for i in shown], mapping)
        first = None
        for row in result:
            first = first or row
            collector.add(tuple(row[i] for i in shown))
        if counted:
            outcome.count = int(first[columns.index(COUNT_COLUMN)]) if first else 0
            if p.rule.amount:
                outcome.amount = _money(first[columns.index(AMOUNT_COLUMN)]) if first else None
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        outcome.error = explain_error(exc, options.timeout_s)
    else:
        collector.finish(conn, dialect, mapping)
    outcome.seconds += time.monotonic() - started


def _fetch_group_rows(
    conn, members: list[Planned], outcomes: dict[str, Outcome], options: Options, dialect: str, mapping
) -> None:
    """The failing rows of several rules over one frame in one scan; each row says which rules it fails."""
    started = time.monotonic()
    limit = sum(outcomes[p.rule.id].count for p in members)
    group = group_rows_query(members, dialect, limit)
    try:
        result = _execute(conn, group.sql, group.params, options.timeout_s)
        columns = [c.lower() for c in result.keys()]  # noqa: SIM118  (a result, not a dict)
        layout = []
        for p, flag, aliases in group.members:
            names = [name.lower() for name, _ in aliases]
            layout.append(
                (
                    columns.index(flag),
                    [columns.index(a) for _, a in aliases],
                    _Collector(p, outcomes[p.rule.id], options, names, mapping),
                )
            )
        for row in result:
            for flag_index, indexes, collector in layout:
                if row[flag_index] == 1:
                    collector.add(tuple(row[i] for i in indexes))
    except sa.exc.DBAPIError:
        conn.rollback()
        for p in members:  # fall back to one query per rule, which names the failing rule in its error
            outcomes[p.rule.id].keys.clear()
            outcomes[p.rule.id].sample.clear()
            _fetch_rows(conn, p, outcomes[p.rule.id], options, dialect, mapping)
        return
    for _, _, collector in layout:
        collector.finish(conn, dialect, mapping)
    share = (time.monotonic() - started) / len(members)
    for p in members:
        outcomes[p.rule.id].seconds += share


def _unit(code, name, count, amount, mapping=None) -> dict:
    aliases = aliases_of(mapping)
    return {
        "agency_code": plain(mask_value("agency_code", code, aliases)),
        "agency_name": plain(mask_value("agency_name", name, aliases)) or "",
        "count": int(count),
        "amount": _money(amount),
    }


def _name_units(conn, outcome: Outcome, units: dict, options: Options, dialect: str, mapping) -> None:
    """Every failing row is at hand: the per-unit totals are exact; only the top units' names are looked up."""
    top = sorted(units.items(), key=lambda item: (-item[1][0], str(item[0])))[:UNITS_SHOWN]
    codes = [code for code, _ in top]
    try:
        rows = _execute(
            conn,
            agency_names_query(len(codes), dialect, mapping),
            {f"u{i}": c for i, c in enumerate(codes)},
            options.timeout_s,
        ).all()
        names = {r[0]: r[1] for r in rows}
    except sa.exc.DBAPIError:  # a target without ele_agency still gets its units, by code
        conn.rollback()
        names = {}
    outcome.units = [
        _unit(code, names.get(code), n, amount if outcome.rule.amount else None, mapping)
        for code, (n, amount) in top
    ]


def _fetch_units(conn, p: Planned, outcome: Outcome, options: Options, dialect: str, mapping) -> None:
    sql = units_query(p, dialect, mapping, UNITS_SHOWN)
    if sql is None:
        return
    try:
        rows = _execute(conn, sql, p.params, options.timeout_s).mappings().all()
    except sa.exc.DBAPIError as exc:  # a target without ele_agency still gets its counts and rows
        conn.rollback()
        outcome.units = [{"error": explain_error(exc, options.timeout_s)}]
    else:
        outcome.units = [
            _unit(r["agency_code"], r["agency_name"], r["n"], r["amount"], mapping) for r in rows
        ]


def run_url(url: str, rules: list[Rule], options: Options, mapping: Mapping | None = None, progress=None):
    engine = connect(url)
    try:
        return run_rules(engine, rules, options, mapping, progress)
    finally:
        engine.dispose()
