"""The check runner 检查执行: plain Python over SQLAlchemy Core, pushed down to the target database.

For a list of rules it counts failures with as few scans as possible (rules over the same tables share one
aggregate query), then — unless switched off — fetches each failing rule's rows up to a cap: their keys for the
diff and the first few, masked, as the sample. Every statement runs in a read-only session under a statement
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

from ..sandbox.generator import normalize_url
from .engine import Rule, RuleError
from .mask import mask_row, plain
from .sqlplan import Mapping, Planned, Scope, count_queries, plan, rows_query, units_query

Progress = Callable[[int, int, str], None]


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


def connect(url: str) -> sa.Engine:
    """An engine for a target: no pool (a run holds one connection for its whole life)."""
    return sa.create_engine(normalize_url(url), poolclass=NullPool)


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
    failing = [p for q in queries for p in q.rules]  # in query order
    steps = len(queries) + (len(planned) if options.sample else 0)
    done = 0
    with read_only(engine, options.timeout_s) as conn:
        for query in queries:
            started = time.monotonic()
            try:
                row = _execute(conn, query.sql, query.params, options.timeout_s).mappings().one()
            except sa.exc.DBAPIError as exc:
                conn.rollback()
                if len(query.rules) > 1:  # one bad rule must not hide the others: count them one by one
                    for p in query.rules:
                        single = count_queries([p], dialect, combine=False)[0]
                        _count_alone(conn, single, outcomes[p.rule.id], options.timeout_s)
                else:
                    outcomes[query.rules[0].rule.id].error = explain_error(exc, options.timeout_s)
            else:
                share = (time.monotonic() - started) / len(query.rules)
                for p, (count_col, amount_col) in zip(query.rules, query.columns, strict=True):
                    outcome = outcomes[p.rule.id]
                    outcome.count = int(row[count_col] or 0)
                    outcome.amount = _money(row[amount_col]) if amount_col else None
                    outcome.seconds += share
            done += 1
            if progress:
                progress(done, steps, "、".join(p.rule.id for p in query.rules))
        if options.sample:
            for p in failing:
                outcome = outcomes[p.rule.id]
                if outcome.count:
                    _fetch_rows(conn, p, outcome, options, dialect)
                    _fetch_units(conn, p, outcome, options, dialect, mapping)
                done += 1
                if progress:
                    progress(done, steps, p.rule.id)
    return [outcomes[r.id] for r in rules]


def _count_alone(conn, query, outcome: Outcome, timeout_s: int) -> None:
    started = time.monotonic()
    try:
        row = _execute(conn, query.sql, query.params, timeout_s).mappings().one()
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        outcome.error = explain_error(exc, timeout_s)
    else:
        outcome.count = int(row["c0"] or 0)
        outcome.amount = _money(row["a0"]) if query.columns[0][1] else None
    outcome.seconds += time.monotonic() - started


def _fetch_rows(conn, p: Planned, outcome: Outcome, options: Options, dialect: str) -> None:
    started = time.monotonic()
    try:
        result = _execute(conn, rows_query(p, dialect, options.key_cap), p.params, options.timeout_s)
        columns = [c.lower() for c in result.keys()]  # noqa: SIM118  (a result, not a dict)
        key_index = [columns.index(k.lower()) for k in p.rule.key]
        for row in result:
            outcome.keys.append([plain(row[i]) for i in key_index])
            if len(outcome.sample) < options.sample_size:
                outcome.sample.append(mask_row(columns, tuple(row)))
        outcome.columns = columns
        outcome.keys_truncated = (outcome.count or 0) > len(outcome.keys)
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        outcome.error = explain_error(exc, options.timeout_s)
    outcome.seconds += time.monotonic() - started


def _fetch_units(conn, p: Planned, outcome: Outcome, options: Options, dialect: str, mapping) -> None:
    sql = units_query(p, dialect, mapping)
    if sql is None or outcome.error:
        return
    started = time.monotonic()
    try:
        rows = _execute(conn, sql, p.params, options.timeout_s).mappings().all()
    except sa.exc.DBAPIError as exc:  # a target without ele_agency still gets its counts and rows
        conn.rollback()
        outcome.units = [{"error": explain_error(exc, options.timeout_s)}]
    else:
        outcome.units = [
            {
                "agency_code": plain(r["agency_code"]),
                "agency_name": r["agency_name"] or "",
                "count": int(r["n"]),
                "amount": _money(r["amount"]),
            }
            for r in rows
        ]
    outcome.seconds += time.monotonic() - started


def run_url(url: str, rules: list[Rule], options: Options, mapping: Mapping | None = None, progress=None):
    engine = connect(url)
    try:
        return run_rules(engine, rules, options, mapping, progress)
    finally:
        engine.dispose()
