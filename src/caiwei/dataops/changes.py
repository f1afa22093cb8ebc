"""数据变更 engine: review a change's SQL, execute it with before- and after-images, roll it back from the images,
and recover after a crash. Plain Python over SQLAlchemy Core and sqlglot (no Django): the platform hands in a
``Store`` (where the journal and the image chunks go) and an engine for the target database.

The protocol of one execution (each step is written to the journal *before* it is taken):

1. ``begin``: the attempt's token (random) is in the journal before the target is touched.
2. one transaction on the target: for each statement, ``image``: the rows its predicate selects are read with
   ``SELECT … FOR UPDATE`` (locked until commit) and stored in the platform in compressed chunks (column-wise JSON
   with typed columns, zlib, SHA-256 per chunk); ``statement``: the statement runs and the affected count must
   equal the number of before-images and the estimate approved (else the transaction is rolled back: 已回退);
   the after-images are read inside the same transaction and stored; the store may write the chunks while the
   target is read (a writer thread) — ``Store.images_durable`` waits until every chunk is durable in the platform;
3. ``commit``: only after ``images_durable`` returned, a marker row (token) is inserted into ``caiwei_change_marker``
   in the same transaction, then COMMIT;
4. ``committed``, ``verified``.

Recovery decides from the marker alone whether the target transaction committed: it inserts a *fence* row with the
attempt's token. The token is the marker's primary key, so the fence either fails (the change committed its marker:
applied) or succeeds — and then the original transaction, should it still be alive, can never commit its marker
(it would fail on the key) and so never commits at all. There is no third state.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import fnmatch
import hashlib
import json
import os
import re
import signal
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

MARKER_TABLE = "caiwei_change_marker"
KILL_ENV = "CAIWEI_CHANGE_KILL_AT"  # crash trials: SIGKILL this process right after journaling the named step
SLEEP_ENV = "CAIWEI_CHANGE_STEP_SLEEP"  # crash trials: seconds to pause after each step
CHUNK_ROWS = 10_000
KEY_BATCH = 1000
LOCK_TIMEOUT_S = 10

DEFAULT_MAX_ROWS = 10_000
# 财政系统的审计、权限与用户表, and the platform's own marker table: never written by a data change.
DEFAULT_FORBIDDEN = (
    MARKER_TABLE,
    "sys_user*",
    "sys_role*",
    "sys_perm*",
    "sys_menu*",
    "sys_auth*",
    "sys_priv*",
    "sys_log*",
    "sys_oper_log*",
    "sys_audit*",
    "audit_*",
    "*_audit",
    "*_audit_log",
    "*_audit_trail",
)
SIDE_EFFECT_FUNCTIONS = {
    "nextval",
    "setval",
    "pg_sleep",
    "sleep",
    "benchmark",
    "load_file",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "dblink",
    "dblink_exec",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "get_lock",
    "release_lock",
    "pg_read_file",
    "pg_write_file",
    "pg_notify",
    "txid_current",
}
SQLGLOT_DIALECT = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
KIND_LABELS = {"update": "UPDATE", "delete": "DELETE", "insert": "INSERT", "ddl": "DDL"}


class ChangeError(ValueError):
    """A refusal or failure, in Chinese, naming the statement and what is wrong."""


class Mismatch(ChangeError):
    """The change did not do what was reviewed (affected count, existing keys): its transaction is rolled back."""


# --- review -----------------------------------------------------------------------------------------------------


@dataclass
class Rules:
    """What a data change may do: forbidden tables (fnmatch patterns, case-insensitive) and the most rows."""

    forbidden: tuple[str, ...] = DEFAULT_FORBIDDEN
    max_rows: int = DEFAULT_MAX_ROWS

    def forbids(self, table: str, schema: str = "") -> str | None:
        names = [table.lower()] + ([f"{schema}.{table}".lower()] if schema else [])
        for pattern in self.forbidden:
            if any(fnmatch.fnmatchcase(n, pattern.lower()) for n in names):
                return pattern
        return None


@dataclass
class Finding:
    level: str  # error (refuses the change) | warning
    message: str
    statement: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Statement:
    """One reviewed statement: the normalised SQL that will run (comments dropped) and what the engine derives."""

    index: int
    kind: str  # update | delete | insert | ddl
    sql: str
    table: str = ""
    schema: str = ""
    where: str = ""
    image_sql: str = ""  # SELECT of the rows the predicate selects (before-images)
    count_sql: str = ""
    keys_sql: str = ""  # INSERT: SELECT of the rows with the inserted keys
    set_columns: list[str] = field(default_factory=list)
    pk: list[str] = field(default_factory=list)
    estimated: int | None = None
    # UPDATE/DELETE whose WHERE is only ``column = constant`` joined by AND: column (lower case) → the constant as SQL
    point: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"第 {self.index + 1} 条（{KIND_LABELS.get(self.kind, self.kind)} {self.table}）"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Statement:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Review:
    statements: list[Statement]
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.level == "error"]

    @property
    def estimated_rows(self) -> int:
        return sum(s.estimated or 0 for s in self.statements)

    @property
    def has_ddl(self) -> bool:
        return any(s.kind == "ddl" for s in self.statements)

    def plan(self) -> list[dict]:
        return [s.as_dict() for s in self.statements]


def sqlglot_dialect(engine_or_name) -> str:
    name = engine_or_name if isinstance(engine_or_name, str) else engine_or_name.dialect.name
    if name not in SQLGLOT_DIALECT:
        raise ChangeError(f"不支持对 {name} 数据库执行数据变更")
    return SQLGLOT_DIALECT[name]


def _name(ident: exp.Expression | None, dialect: str) -> str:
    if ident is None:
        return ""
    if isinstance(ident, exp.Identifier):
        return ident.this if ident.quoted or dialect != "postgres" else ident.this.lower()
    return str(ident.name)


def _writes_inside(tree: exp.Expression) -> bool:
    for node in tree.walk():
        if node is tree:
            continue
        if isinstance(node, exp.Update | exp.Delete | exp.Insert | exp.Merge | exp.Create | exp.Drop):
            return True
        if isinstance(node, exp.Alter | exp.TruncateTable | exp.Command):
            return True
    return False


def _functions(tree: exp.Expression) -> set[str]:
    found = set()
    for node in tree.find_all(exp.Func):
        name = str(node.this) if isinstance(node, exp.Anonymous) else type(node).__name__
        found.add(name.lower())
    return found


def _literal_value(node: exp.Expression):
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return int(text) if text.lstrip("-").isdigit() else decimal.Decimal(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return -_literal_value(node.this)
    return None


def _is_literal(node: exp.Expression) -> bool:
    return _literal_value(node) is not None


def parse(sql: str, dialect: str) -> list[exp.Expression]:
    import logging

    if not (sql or "").strip():
        raise ChangeError("请填写变更 SQL")
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # unsupported syntax is reported below as a refusal, not logged
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise ChangeError(f"SQL 无法解析：{str(exc).splitlines()[0][:200]}") from exc
    finally:
        logger.setLevel(level)
    if not trees:
        raise ChangeError("请填写变更 SQL")
    return trees


def analyse(sql: str, dialect: str, *, rules: Rules, declared_ddl: bool = False) -> Review:
    """The rules that need no connection: statement kinds, WHERE, one table, no write inside, forbidden tables."""
    findings: list[Finding] = []
    statements: list[Statement] = []
    try:
        trees = parse(sql, dialect)
    except ChangeError as exc:
        return Review([], [Finding("error", str(exc))])
    seen_tables: dict[str, list[Statement]] = {}
    for i, tree in enumerate(trees):
        where = f"第 {i + 1} 条语句"
        st, problems = _analyse_one(tree, i, dialect, rules, declared_ddl)
        findings += [Finding("error", f"{where}：{p}", i) for p in problems]
        if st is None:
            continue
        statements.append(st)
        if st.kind != "ddl" and st.table:
            seen_tables.setdefault(f"{st.schema}.{st.table}".lower(), []).append(st)
    # Several statements on one table only when each names its rows by constant keys (INSERT … VALUES, or a WHERE of
    # column = constant only): the target check then proves they cover the primary key and never share a row, so
    # each row has one before-image and one after-image (a range restore writes such changes).
    for same in seen_tables.values():
        if len(same) < 2:
            continue
        for st in same:
            if st.kind != "insert" and not st.point:
                first = same[0] if same[0] is not st else same[1]
                findings.append(
                    Finding(
                        "error",
                        f"第 {st.index + 1} 条语句：表 {st.table} 已在第 {first.index + 1} 条语句中修改；同一张表在一次变更中"
                        "只能由一条语句修改（除非每条都只按主键等于常量定位行），请合并为一条或拆成多个变更",
                        st.index,
                    )
                )
    return Review(statements, findings)


def _analyse_one(
    tree: exp.Expression, i: int, d: str, rules: Rules, declared_ddl: bool
) -> tuple[Statement | None, list[str]]:
    problems: list[str] = []
    if isinstance(tree, exp.Create | exp.Alter | exp.Drop | exp.TruncateTable):
        return _analyse_ddl(tree, i, d, rules, declared_ddl)
    if not isinstance(tree, exp.Update | exp.Delete | exp.Insert):
        kind = str(tree.this) if isinstance(tree, exp.Command) else tree.key
        return None, [f"只允许 UPDATE、DELETE、INSERT 语句（声明后可含 DDL），不能执行 {kind.upper()[:30]}"]
    if _writes_inside(tree):
        problems.append("语句中含有写操作的子查询或公用表表达式，不允许")
    if tree.args.get("with_") or tree.args.get("with"):
        problems.append("不支持 WITH 公用表表达式，请改写为子查询")
    bad = sorted(_functions(tree) & SIDE_EFFECT_FUNCTIONS)
    if bad:
        problems.append(f"调用了有副作用的函数 {'、'.join(bad)}，不允许")
    if tree.args.get("returning"):
        problems.append("不需要写 RETURNING，平台会自己读取变更前后的数据")
    kind = {exp.Update: "update", exp.Delete: "delete", exp.Insert: "insert"}[type(tree)]
    if kind == "insert":
        return _analyse_insert(tree, i, d, rules, problems)
    target = tree.this
    if tree.args.get("tables") or tree.args.get("using") or tree.args.get("from_") or tree.args.get("from"):
        problems.append("一条语句只能改一张表，不能带 FROM、USING 或多表")
    if not isinstance(target, exp.Table) or target.args.get("joins"):
        problems.append("一条语句只能改一张表，不能关联其他表（JOIN）")
        return None, problems
    if tree.args.get("limit") or tree.args.get("order"):
        problems.append("不支持 ORDER BY、LIMIT：影响行数须由条件确定")
    condition = tree.args.get("where")
    if condition is None:
        problems.append(f"{KIND_LABELS[kind]} 必须带 WHERE 条件")
        return None, problems
    if not list(condition.find_all(exp.Column)):
        problems.append("WHERE 条件不含任何列（如 1=1），等于不加条件")
    table, schema = _name(target.this, d), _name(target.args.get("db"), d)
    if pattern := rules.forbids(table, schema):
        problems.append(
            f"表 {table} 在禁止修改的表清单中（{pattern}：财政系统的审计、权限、用户表等），不能修改"
        )
    set_columns = []
    if kind == "update":
        for eq in tree.expressions:
            col = eq.this if isinstance(eq, exp.EQ) else None
            if not isinstance(col, exp.Column):
                problems.append("SET 的写法应为 列 = 值")
                continue
            set_columns.append(_name(col.this, d))
    source = target.copy()
    sel = exp.Select(expressions=[exp.Star()]).from_(source).where(condition.this.copy())
    count = (
        exp.Select(expressions=[exp.Count(this=exp.Star())]).from_(source.copy()).where(condition.this.copy())
    )
    image = sel.copy()
    if d != "sqlite":
        image.set("locks", [exp.Lock(update=True)])
    st = Statement(
        index=i,
        kind=kind,
        sql=tree.sql(dialect=d, comments=False),
        table=table,
        schema=schema,
        point=_point(condition.this, d),
        where=condition.this.sql(dialect=d, comments=False),
        image_sql=image.sql(dialect=d, comments=False),
        count_sql=count.sql(dialect=d, comments=False),
        set_columns=set_columns,
    )
    return st, problems


def _point(condition: exp.Expression, d: str) -> dict[str, str]:
    """``{column: constant}`` when the condition is only ``column = constant`` terms joined by AND, else ``{}``."""
    terms, todo = [], [condition]
    while todo:
        node = todo.pop()
        if isinstance(node, exp.Paren):
            todo.append(node.this)
        elif isinstance(node, exp.And):
            todo += [node.this, node.expression]
        else:
            terms.append(node)
    point: dict[str, str] = {}
    for term in terms:
        if not isinstance(term, exp.EQ):
            return {}
        col, value = term.this, term.expression
        if isinstance(value, exp.Column):
            col, value = value, col
        if not isinstance(col, exp.Column) or not _is_literal(value):
            return {}
        name = _name(col.this, d).lower()
        if name in point:
            return {}
        point[name] = str(_literal_value(value))
    return point


def _analyse_insert(tree: exp.Insert, i: int, d: str, rules: Rules, problems: list[str]):
    schema_node = tree.this
    if not isinstance(schema_node, exp.Schema) or not isinstance(schema_node.this, exp.Table):
        problems.append("INSERT 须写明列名：INSERT INTO 表 (列, …) VALUES (…)")
        return None, problems
    target = schema_node.this
    columns = [_name(c, d) for c in schema_node.expressions]
    values = tree.expression
    if not isinstance(values, exp.Values):
        problems.append("INSERT 只支持 VALUES 写法（逐行给出值，含主键），不支持 INSERT … SELECT")
        return None, problems
    for flag in ("conflict", "overwrite", "ignore", "alternative"):
        if tree.args.get(flag):
            problems.append("不支持 ON CONFLICT、ON DUPLICATE KEY、INSERT IGNORE、REPLACE：插入的行须是新行")
            break
    table, schema = _name(target.this, d), _name(target.args.get("db"), d)
    if pattern := rules.forbids(table, schema):
        problems.append(
            f"表 {table} 在禁止修改的表清单中（{pattern}：财政系统的审计、权限、用户表等），不能修改"
        )
    rows = values.expressions
    for n, row in enumerate(rows, 1):
        if not isinstance(row, exp.Tuple) or len(row.expressions) != len(columns):
            problems.append(f"VALUES 第 {n} 行的值个数与列数（{len(columns)}）不符")
            break
    st = Statement(
        index=i,
        kind="insert",
        sql=tree.sql(dialect=d, comments=False),
        table=table,
        schema=schema,
        set_columns=columns,
        estimated=len(rows),
    )
    st._insert = (target, columns, rows)  # type: ignore[attr-defined]  (used by check() to build keys_sql)
    return st, problems


def _analyse_ddl(tree, i, d, rules: Rules, declared_ddl: bool):
    problems = []
    if not declared_ddl:
        problems.append("含 DDL（建表、改表结构），须在变更单上声明“含 DDL”")
    if isinstance(tree, exp.Drop | exp.TruncateTable):
        problems.append("DROP、TRUNCATE 会丢失数据且无法按镜像恢复，不允许")
        return None, problems
    if d == "mysql":
        problems.append(
            "MySQL / MariaDB 的 DDL 会隐式提交，无法与变更标记同在一个事务中，平台不执行；请按回退方案人工执行"
        )
    tables = list(tree.find_all(exp.Table))
    names = []
    for t in tables:
        name, schema = _name(t.this, d), _name(t.args.get("db"), d)
        names.append(name)
        if pattern := rules.forbids(name, schema):
            problems.append(f"表 {name} 受保护（{pattern}），不能执行 DDL")
    st = Statement(
        index=i, kind="ddl", sql=tree.sql(dialect=d, comments=False), table=names[0] if names else ""
    )
    return st, problems


def review(
    sql: str,
    engine: sa.Engine | None,
    *,
    dialect: str | None = None,
    rules: Rules | None = None,
    declared_ddl: bool = False,
    timeout_s: int = 60,
) -> Review:
    """All review rules; with an engine also the ones that look at the target (table, primary key, columns, the
    affected rows counted by the same predicate, keys an INSERT would collide with), read-only."""
    rules = rules or Rules()
    d = dialect or sqlglot_dialect(engine)
    result = analyse(sql, d, rules=rules, declared_ddl=declared_ddl)
    if engine is not None and result.statements:
        try:
            with engine.connect() as conn:
                _read_only(conn, timeout_s)
                for st in result.statements:
                    result.findings += _check_target(conn, st, d)
                conn.rollback()
            result.findings += _shared_tables(result.statements)
        except sa.exc.SQLAlchemyError as exc:
            result.findings.append(Finding("error", f"连接目标库或估计影响行数失败：{db_message(exc)}"))
    total = result.estimated_rows
    if total > rules.max_rows:
        result.findings.append(
            Finding("error", f"估计影响 {total} 行，超过单次变更的上限 {rules.max_rows} 行，请拆分变更")
        )
    if result.has_ddl:
        result.findings.append(
            Finding("warning", "含 DDL 的语句没有前镜像，不能一键回滚，请在回退方案中写明人工回退步骤")
        )
    for st in result.statements:
        if st.estimated == 0 and st.kind in ("update", "delete"):
            result.findings.append(Finding("warning", f"{st.label} 按当前数据不影响任何行", st.index))
    return result


def _read_only(conn: sa.Connection, timeout_s: int) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
    elif name in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # the next transaction: the review's SELECTs


def db_message(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0][:300] if str(orig).strip() else type(orig).__name__


def _table(conn: sa.Connection, st: Statement) -> sa.TableClause:
    """The table with its columns as the database has them, untyped: values go to and come from the driver as they
    are (the images are the driver's values), never through SQLAlchemy's type conversions."""
    reflected = sa.Table(st.table, sa.MetaData(), schema=st.schema or None, autoload_with=conn)
    table = sa.table(st.table, *[sa.column(c.name) for c in reflected.columns], schema=st.schema or None)
    table.pk_names = [c.name for c in reflected.primary_key.columns]  # type: ignore[attr-defined]
    return table


def _check_target(conn: sa.Connection, st: Statement, d: str) -> list[Finding]:
    if st.kind == "ddl":
        return []
    found: list[Finding] = []
    inspector = sa.inspect(conn)
    if not inspector.has_table(st.table, schema=st.schema or None):
        return [Finding("error", f"{st.label}：目标库中没有表 {st.table}", st.index)]
    pk = inspector.get_pk_constraint(st.table, schema=st.schema or None).get("constrained_columns") or []
    columns = [c["name"] for c in inspector.get_columns(st.table, schema=st.schema or None)]
    st.pk = list(pk)
    if not pk:
        found.append(
            Finding("error", f"{st.label}：表 {st.table} 没有主键，无法按主键保存前镜像，不能变更", st.index)
        )
    lower = {c.lower(): c for c in columns}
    unknown = [c for c in st.set_columns if c.lower() not in lower]
    if unknown:
        found.append(Finding("error", f"{st.label}：表 {st.table} 没有列 {'、'.join(unknown)}", st.index))
    if st.kind == "update":
        touched = [c for c in st.set_columns if c.lower() in {p.lower() for p in pk}]
        if touched:
            found.append(
                Finding(
                    "error",
                    f"{st.label}：不能修改主键列 {'、'.join(touched)}（前后镜像按主键对应）",
                    st.index,
                )
            )
        st.estimated = int(conn.exec_driver_sql(st.count_sql).scalar() or 0)
    elif st.kind == "delete":
        st.estimated = int(conn.exec_driver_sql(st.count_sql).scalar() or 0)
    elif st.kind == "insert" and pk:
        target, cols, rows = getattr(st, "_insert", (None, [], []))
        if target is not None:
            positions = []
            for p in pk:
                match = [n for n, c in enumerate(cols) if c.lower() == p.lower()]
                if not match:
                    found.append(Finding("error", f"{st.label}：INSERT 须给出主键列 {p} 的值", st.index))
                    return found
                positions.append(match[0])
            for n, row in enumerate(rows, 1):
                if any(not _is_literal(row.expressions[p]) for p in positions):
                    found.append(
                        Finding(
                            "error",
                            f"{st.label}：VALUES 第 {n} 行的主键须为常量（不能用表达式或默认值）",
                            st.index,
                        )
                    )
                    return found
            keys = [[row.expressions[p].copy() for p in positions] for row in rows]
            st.keys_sql = _keys_select(target, [cols[p] for p in positions], keys, d)
            existing = conn.exec_driver_sql(_count_of(st.keys_sql, d)).scalar()
            if existing:
                found.append(
                    Finding(
                        "error",
                        f"{st.label}：要插入的主键中已有 {existing} 个在表 {st.table} 中存在",
                        st.index,
                    )
                )
    return found


def _statement_keys(st: Statement) -> list[tuple[str, ...]] | None:
    """The primary keys of the rows a keyed statement names (constants, as text), or None when it does not name its
    rows by the whole primary key."""
    pk = [p.lower() for p in st.pk]
    if not pk:
        return None
    if st.kind == "insert":
        _target, cols, rows = getattr(st, "_insert", (None, [], []))
        lower = [c.lower() for c in cols]
        if any(p not in lower for p in pk):
            return None
        positions = [lower.index(p) for p in pk]
        return [tuple(str(_literal_value(row.expressions[n])) for n in positions) for row in rows]
    if st.point and all(p in st.point for p in pk):
        return [tuple(st.point[p] for p in pk)]
    return None


def _shared_tables(statements: list[Statement]) -> list[Finding]:
    """Statements sharing a table must each name whole primary keys, and no row may be named twice."""
    found: list[Finding] = []
    by_table: dict[str, list[Statement]] = {}
    for st in statements:
        if st.kind != "ddl" and st.table:
            by_table.setdefault(f"{st.schema}.{st.table}".lower(), []).append(st)
    for same in by_table.values():
        if len(same) < 2:
            continue
        seen: dict[tuple[str, ...], int] = {}
        for st in same:
            keys = _statement_keys(st)
            if keys is None:
                found.append(
                    Finding(
                        "error",
                        f"{st.label}：同一张表有多条语句时，每条都须按完整主键（{'、'.join(st.pk) or '无主键'}）等于常量定位行",
                        st.index,
                    )
                )
                continue
            for key in keys:
                if key in seen:
                    found.append(
                        Finding(
                            "error",
                            f"{st.label}：主键 {'/'.join(key)} 的行已由第 {seen[key] + 1} 条语句修改，一行在一次变更中只能改一次",
                            st.index,
                        )
                    )
                    break
                seen[key] = st.index
    return found


def _keys_select(target: exp.Table, pk: list[str], keys: list[list[exp.Expression]], d: str) -> str:
    table = exp.Table(
        this=target.this.copy(), db=target.args.get("db").copy() if target.args.get("db") else None
    )
    if len(pk) == 1:
        cond = exp.In(this=exp.column(pk[0], quoted=True), expressions=[k[0] for k in keys])
    else:
        cond = exp.In(
            this=exp.Tuple(expressions=[exp.column(p, quoted=True) for p in pk]),
            expressions=[exp.Tuple(expressions=k) for k in keys],
        )
    return exp.Select(expressions=[exp.Star()]).from_(table).where(cond).sql(dialect=d, comments=False)


def _count_of(select_sql: str, d: str) -> str:
    tree = sqlglot.parse_one(select_sql, read=d)
    tree.set("expressions", [exp.Count(this=exp.Star())])
    return tree.sql(dialect=d)


# --- guided fix -------------------------------------------------------------------------------------------------


def guided_fix_sql(
    table: str, column: str, value: Any, key_columns: list[str], keys: list[list], dialect: str
) -> str:
    """“把这些主键的行的列 X 改为 Y” as an UPDATE: ``UPDATE t SET x = 'y' WHERE id IN (…)`` (composite keys as row
    values). Values are literals quoted by sqlglot; NULL for None."""
    if not table or not column or not key_columns or not keys:
        raise ChangeError("引导式修复须给出表、要修改的列、新值和至少一个主键")
    for n, key in enumerate(keys, 1):
        if len(key) != len(key_columns):
            raise ChangeError(
                f"第 {n} 个主键应有 {len(key_columns)} 个值（{'、'.join(key_columns)}），得到 {len(key)} 个"
            )
    if column.lower() in {k.lower() for k in key_columns}:
        raise ChangeError(f"不能修改主键列 {column}")

    def lit(v):
        if v is None:
            return exp.Null()
        if isinstance(v, bool):
            return exp.Boolean(this=v)
        if isinstance(v, int | float | decimal.Decimal):
            return exp.Literal.number(v)
        return exp.Literal.string(str(v))

    target = exp.to_table(table, dialect=dialect)
    if len(key_columns) == 1:
        cond = exp.In(this=exp.column(key_columns[0]), expressions=[lit(k[0]) for k in keys])
    else:
        cond = exp.In(
            this=exp.Tuple(expressions=[exp.column(c) for c in key_columns]),
            expressions=[exp.Tuple(expressions=[lit(v) for v in k]) for k in keys],
        )
    stmt = exp.Update(this=target, expressions=[exp.EQ(this=exp.column(column), expression=lit(value))])
    stmt.set("where", exp.Where(this=cond))
    return stmt.sql(dialect=dialect)


# --- images -----------------------------------------------------------------------------------------------------


def _b64(v) -> str:
    return base64.b64encode(bytes(v)).decode()


ENCODERS: dict[type, tuple[str, Callable]] = {
    decimal.Decimal: ("d", str),
    dt.datetime: ("dt", dt.datetime.isoformat),
    dt.date: ("da", dt.date.isoformat),
    dt.time: ("ti", dt.time.isoformat),
    dt.timedelta: ("td", lambda v: v // dt.timedelta(microseconds=1)),
    bytes: ("b", _b64),
    memoryview: ("b", _b64),
    bytearray: ("b", _b64),
    uuid.UUID: ("u", str),
}
DECODERS: dict[str, Callable] = {
    "d": decimal.Decimal,
    "dt": dt.datetime.fromisoformat,
    "da": dt.date.fromisoformat,
    "ti": dt.time.fromisoformat,
    "td": lambda v: dt.timedelta(microseconds=v),
    "b": base64.b64decode,
    "u": uuid.UUID,
}
NATIVE = (int, float, str, bool, dict, list)


def _encode_value(v):
    if v is None or isinstance(v, NATIVE):
        return v
    code, fn = ENCODERS.get(type(v)) or ENCODERS[next(t for t in ENCODERS if isinstance(v, t))]
    return {"$": code, "v": fn(v)}


def _encode_column(values: list) -> tuple[str, list]:
    kinds = {type(v) for v in values if v is not None}
    if not kinds or all(k in NATIVE for k in kinds):
        return "j", list(values)
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind in ENCODERS:
            fn = ENCODERS[kind][1]
            return ENCODERS[kind][0], [None if v is None else fn(v) for v in values]
    return "x", [_encode_value(v) for v in values]  # mixed: tagged value by value


def _decode_column(code: str, values: list) -> list:
    if code == "j":
        return values
    if code == "x":
        return [
            DECODERS[v["$"]](v["v"]) if isinstance(v, dict) and "$" in v and set(v) == {"$", "v"} else v
            for v in values
        ]
    fn = DECODERS[code]
    return [None if v is None else fn(v) for v in values]


def encode_chunk(columns: list[str], rows: list) -> bytes:
    """Rows (all columns) as compressed column-wise JSON with one type code per column: exact round trip of
    Decimal, dates and times, bytes, UUIDs."""
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    types, values = [], []
    for col in cols:
        code, vals = _encode_column(list(col))
        types.append(code)
        values.append(vals)
    payload = json.dumps(
        {"c": columns, "t": types, "v": values, "n": len(rows)}, ensure_ascii=False, separators=(",", ":")
    )
    return zlib.compress(payload.encode("utf-8"), 1)


PGCOPY = b'{"f":"pgcopy"'
_COPY_ESCAPES = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v", b"\\": b"\\"}
_COPY_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.S)


def _copy_field(field: bytes) -> bytes | None:
    if field == b"\\N":
        return None
    if b"\\" not in field:
        return field

    def one(m):
        code = m.group(1)
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _COPY_ESCAPES.get(code, code)

    return _COPY_ESCAPE.sub(one, field)


def _decode_pgcopy(payload: bytes) -> tuple[list[str], list[tuple]]:
    """Rows kept as PostgreSQL's COPY text, turned into the values psycopg gives for a SELECT of those columns."""
    from psycopg.adapt import Transformer
    from psycopg.pq import Format

    head, _, body = payload.partition(b"\n")
    header = json.loads(head)
    tx = Transformer()
    tx.set_loader_types(header["o"], Format.TEXT)
    rows = [
        tx.load_sequence([_copy_field(f) for f in line.split(b"\t")]) for line in body.split(b"\n") if line
    ]
    return header["c"], rows


def decode_chunk(data: bytes) -> tuple[list[str], list[tuple]]:
    raw = zlib.decompress(data)
    if raw.startswith(PGCOPY):
        return _decode_pgcopy(raw)
    payload = json.loads(raw)
    cols = [_decode_column(code, vals) for code, vals in zip(payload["t"], payload["v"], strict=True)]
    rows = list(zip(*cols, strict=True)) if cols else []
    if not cols:
        rows = [() for _ in range(payload["n"])]
    return payload["c"], rows


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store(Protocol):
    """Where the platform keeps one attempt's journal and image chunks. ``journal`` is durable when it returns;
    ``add_chunk`` may keep the chunk (in memory, or in an open platform transaction) until ``images_durable``,
    which makes every chunk added so far durable and is called before the target transaction commits (one
    platform commit for all the images of an attempt instead of one per chunk)."""

    def journal(self, step: str, detail: dict) -> None: ...

    def add_chunk(self, statement: int, kind: str, seq: int, rows: int, data: bytes, digest: str) -> None: ...

    def images_durable(self) -> None: ...


ChunkSource = Callable[[int, str], Iterable[tuple[bytes, str]]]  # (statement, before|after) -> (data, sha256)


def load_images(source: ChunkSource, st: Statement, kind: str) -> tuple[list[str], dict[tuple, tuple]]:
    """The images of one statement keyed by primary key, every chunk's checksum verified."""
    columns: list[str] = []
    rows: dict[tuple, tuple] = {}
    for data, digest in source(st.index, kind):
        if sha256(data) != digest:
            raise ChangeError(
                f"{st.label} 的{'前' if kind == 'before' else '后'}镜像校验和不符，镜像已损坏，不能使用"
            )
        cols, chunk = decode_chunk(data)
        columns = cols
        idx = [cols.index(p) for p in st.pk]
        for row in chunk:
            rows[tuple(row[i] for i in idx)] = row
    return columns, rows


def step(store: Store, name: str, detail: dict | None = None) -> None:
    """Journal a step before it is taken (durable); the crash trials kill the process right here."""
    store.journal(name, detail or {})
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if pause := os.environ.get(SLEEP_ENV):  # crash trials: widen the window a random kill may land in
        time.sleep(float(pause))


# --- the marker -------------------------------------------------------------------------------------------------

_MARKER_META = sa.MetaData()
MARKER = sa.Table(
    MARKER_TABLE,
    _MARKER_META,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("change_ref", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # execute | rollback
    sa.Column("state", sa.String(16), nullable=False),  # committed | fenced
    sa.Column("at", sa.DateTime, nullable=False),
)


def ensure_marker_table(engine: sa.Engine) -> None:
    """Create caiwei_change_marker on the target on first use (its own transaction: DDL on MariaDB commits)."""
    try:
        _MARKER_META.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(MARKER_TABLE):  # another process created it at the same moment
            raise


def _set_lock_timeout(conn: sa.Connection) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
    elif name in ("mysql", "mariadb"):
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_S}")
    conn.commit()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def fence(engine: sa.Engine, token: str, change_ref: str, kind: str) -> str:
    """Whether the attempt ``token`` committed on the target: ``committed``, ``not_committed`` (and now never will),
    or ``in_flight`` (its transaction still holds the key: try again later)."""
    ensure_marker_table(engine)
    with engine.connect() as conn:
        _set_lock_timeout(conn)
        try:
            conn.execute(
                MARKER.insert().values(
                    token=token, change_ref=change_ref, kind=kind, state="fenced", at=_now()
                )
            )
            conn.commit()
            return "not_committed"
        except sa.exc.IntegrityError:
            conn.rollback()
        except sa.exc.DBAPIError as exc:
            conn.rollback()
            if "lock" in db_message(exc).lower() or "timeout" in db_message(exc).lower():
                return "in_flight"
            raise
        state = conn.execute(sa.select(MARKER.c.state).where(MARKER.c.token == token)).scalar()
        return "committed" if state == "committed" else "not_committed"


# --- execution --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    state: str  # applied | reverted (count mismatch, rolled back) | failed (database error, rolled back) | refused
    message: str = ""
    rows: int = 0
    per_statement: list[int] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)


def _backend_id(conn: sa.Connection) -> Any:
    name = conn.dialect.name
    try:
        if name == "postgresql":
            return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        if name in ("mysql", "mariadb"):
            return conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    except sa.exc.DBAPIError:
        return None
    return None


class _Chunker:
    def __init__(self, store: Store, st: Statement, kind: str):
        self.store, self.st, self.kind = store, st, kind
        self.seq = 0
        self.rows = 0

    def add(self, columns: list[str], rows: list) -> None:
        if not rows and self.seq:
            return
        data = encode_chunk(columns, rows)
        self.store.add_chunk(self.st.index, self.kind, self.seq, len(rows), data, sha256(data))
        self.seq += 1
        self.rows += len(rows)


def _pk_index(columns: list[str], pk: list[str]) -> list[int]:
    lower = [c.lower() for c in columns]
    return [lower.index(p.lower()) for p in pk]


def _select_by_keys(conn, table: sa.Table, pk: list[str], keys: list[tuple], lock: bool) -> Iterator[sa.Row]:
    cols = [table.c[p] for p in pk]
    for start in range(0, len(keys), KEY_BATCH):
        batch = keys[start : start + KEY_BATCH]
        cond = cols[0].in_([k[0] for k in batch]) if len(cols) == 1 else sa.tuple_(*cols).in_(batch)
        query = sa.select(table).where(cond)
        if lock and conn.dialect.name != "sqlite":
            query = query.with_for_update()
        yield from conn.execute(query)


def _stream(conn, sql: str, chunk_rows: int) -> Iterator[tuple[list[str], list[tuple]]]:
    """(columns, rows as plain tuples) ``chunk_rows`` at a time. On MySQL / MariaDB an unbuffered cursor: the rows
    are streamed instead of first held all in the driver, and no SQLAlchemy row objects are made."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        result = conn.exec_driver_sql(sql)
        columns = list(result.keys())
        while batch := result.fetchmany(chunk_rows):
            yield columns, [tuple(r) for r in batch]
        return
    import pymysql.cursors

    cursor = conn.connection.dbapi_connection.cursor(pymysql.cursors.SSCursor)
    try:
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(chunk_rows):
            yield columns, list(batch)
    finally:
        cursor.close()  # reads what is left: the connection is free for the next statement


def _int_runs(keys: list[tuple]) -> list[tuple[int, int]] | None:
    """Single-column integer keys as sorted runs of consecutive values, or None for any other key."""
    if not keys or len(keys[0]) != 1 or any(type(k[0]) is not int for k in keys):
        return None
    values = sorted(k[0] for k in keys)
    runs: list[tuple[int, int]] = []
    lo = hi = values[0]
    for v in values[1:]:
        if v == hi + 1:
            hi = v
        elif v != hi:
            runs.append((lo, hi))
            lo = hi = v
    runs.append((lo, hi))
    return runs


def _runs_select(conn, table, key: str, runs: list[tuple[int, int]]) -> str:
    prep = conn.dialect.identifier_preparer
    col = prep.quote(key)
    terms = [f"{col} = {lo}" if lo == hi else f"{col} BETWEEN {lo} AND {hi}" for lo, hi in runs]
    # quoted identifiers and Python ints only (_int_runs checks the type): nothing from outside is spliced in
    return f"SELECT * FROM {prep.format_table(table)} WHERE {' OR '.join(terms)}"  # noqa: S608


def execute(
    engine: sa.Engine,
    plan: list[Statement],
    store: Store,
    *,
    token: str,
    change_ref: str,
    expected: list[int | None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Outcome:
    """Run the reviewed statements in one target transaction with before- and after-images (module docstring)."""
    step(store, "begin", {"token": token, "statements": len(plan)})
    ensure_marker_table(engine)
    counts: list[int] = []
    with engine.connect() as conn:
        _set_lock_timeout(conn)
        step(store, "connect", {"backend": _backend_id(conn)})
        try:
            for st in plan:
                counts.append(_run_statement(conn, st, store, expected, chunk_rows))
            store.images_durable()  # the images are in the platform before the target can commit
            step(store, "commit", {"rows": counts, "images_durable": True})
            conn.execute(
                MARKER.insert().values(
                    token=token, change_ref=change_ref, kind="execute", state="committed", at=_now()
                )
            )
        except Mismatch as exc:
            conn.rollback()
            store.journal("reverted", {"reason": str(exc)})
            return Outcome("reverted", str(exc), sum(counts), counts)
        except sa.exc.IntegrityError as exc:
            conn.rollback()
            if "caiwei_change_marker" in str(exc) or token in str(exc):
                store.journal("fenced", {"reason": "恢复程序已判定本次执行未提交"})
                return Outcome("failed", "恢复程序已判定本次执行未提交，目标库未改动")
            store.journal("failed", {"reason": db_message(exc)})
            return Outcome("failed", f"数据库拒绝：{db_message(exc)}，已回滚，目标库未改动")
        except Exception as exc:  # a database error (SQLAlchemy's or the driver's during COPY), a refusal
            conn.rollback()
            message = str(exc) if isinstance(exc, ChangeError) else db_message(exc)
            store.journal("failed", {"reason": message})
            return Outcome("failed", f"执行出错：{message}，已回滚，目标库未改动")
        if (unknown := _commit(conn, store)) is not None:
            return unknown
    step(store, "committed", {"rows": counts})
    return Outcome("applied", "", sum(counts), counts)


def _commit(conn, store: Store) -> Outcome | None:
    """COMMIT; when it fails the outcome is unknown (the server may have committed before the connection broke):
    only the marker can tell, so the caller asks it (fence) instead of guessing."""
    try:
        conn.commit()
    except Exception as exc:
        store.journal("unknown", {"reason": db_message(exc)})
        return Outcome("unknown", f"提交时出错：{db_message(exc)}；是否已提交由目标库的标记判定")
    return None


def _run_statement(conn, st: Statement, store: Store, expected, chunk_rows: int) -> int:
    if st.kind == "ddl":
        step(store, "statement", {"statement": st.index, "sql": st.sql[:2000]})
        conn.exec_driver_sql(st.sql)
        return 0
    if conn.dialect.name == "postgresql" and st.kind in ("update", "delete") and st.pk:
        return _run_pg(
            conn, st, store, expected, chunk_rows
        )  # the key is known from the review: no reflection
    table = _table(conn, st)
    pk = st.pk or table.pk_names
    if not pk:
        raise ChangeError(f"{st.label}：表 {st.table} 没有主键")
    st.pk = pk
    before = _Chunker(store, st, "before")
    keys: list[tuple] = []
    if conn.dialect.name == "postgresql" and st.kind in ("update", "delete"):
        return _run_pg(conn, st, store, expected, chunk_rows)
    mysql = conn.dialect.name in ("mysql", "mariadb")
    if st.kind in ("update", "delete"):
        step(store, "image", {"statement": st.index, "sql": st.image_sql})
        columns = []
        with contextlib.closing(_stream(conn, st.image_sql, chunk_rows)) as stream:
            for columns, batch in stream:  # closed at once on an error: the connection leaves the result
                idx = _pk_index(columns, pk)
                before.add(columns, batch)
                keys += [tuple(r[i] for i in idx) for r in batch]
        if before.seq == 0:
            before.add(columns, [])
    else:  # insert: nothing may exist under the keys yet
        step(store, "image", {"statement": st.index, "sql": st.keys_sql})
        existing = conn.exec_driver_sql(
            st.keys_sql + ("" if conn.dialect.name == "sqlite" else " FOR UPDATE")
        ).fetchall()
        if existing:
            raise Mismatch(f"{st.label}：要插入的主键中已有 {len(existing)} 个存在，已回退")
    want = expected[st.index] if expected and st.index < len(expected) else None
    if st.kind != "insert" and want is not None and before.rows != want:
        raise Mismatch(
            f"{st.label}：审批时估计影响 {want} 行，执行时条件选中 {before.rows} 行，数据已变化，已回退；请重新审核"
        )
    step(store, "statement", {"statement": st.index, "sql": st.sql[:2000], "before_rows": before.rows})
    returning = st.kind == "update" and conn.dialect.name == "postgresql"
    sql = st.sql + (" RETURNING *" if returning else "")
    result = conn.exec_driver_sql(sql)
    count = result.rowcount
    after = _Chunker(store, st, "after")
    if returning:
        columns = list(result.keys())
        rows = result.fetchall()
        count = len(rows)
        _check_count(st, count, before.rows, want)
        for start in range(0, len(rows), chunk_rows):
            after.add(columns, rows[start : start + chunk_rows])
    elif st.kind == "update":
        _check_count(st, count, before.rows, want)
        batch: list = []
        columns = [c.name for c in table.columns]
        if mysql and (runs := _int_runs(keys)) is not None:
            # one streamed SELECT by key ranges (the keys of an UPDATE by a range predicate are mostly runs of
            # consecutive integers), instead of an IN list per 1 000 keys
            for start in range(0, len(runs), KEY_BATCH):
                sql = _runs_select(conn, table, pk[0], runs[start : start + KEY_BATCH])
                with contextlib.closing(_stream(conn, sql, chunk_rows)) as stream:
                    for columns, rows in stream:
                        batch += rows
                        if len(batch) >= chunk_rows:
                            after.add(columns, batch[:chunk_rows])
                            batch = batch[chunk_rows:]
        else:
            for row in _select_by_keys(conn, table, pk, keys, lock=False):
                batch.append(tuple(row))
                if len(batch) >= chunk_rows:
                    after.add(columns, batch)
                    batch = []
        after.add(columns, batch)
        if after.rows != count:
            raise Mismatch(f"{st.label}：修改后按主键读回 {after.rows} 行，应为 {count} 行，已回退")
    elif st.kind == "delete":
        _check_count(st, count, before.rows, want)
    else:  # insert
        if want is not None and count != want:
            raise Mismatch(f"{st.label}：应插入 {want} 行，实际 {count} 行，已回退")
        result = conn.exec_driver_sql(st.keys_sql)
        columns = list(result.keys())
        rows = result.fetchall()
        if len(rows) != count:
            raise Mismatch(f"{st.label}：插入后按主键读回 {len(rows)} 行，应为 {count} 行，已回退")
        for start in range(0, max(len(rows), 1), chunk_rows):
            after.add(columns, rows[start : start + chunk_rows])
    step(store, "images", {"statement": st.index, "before": before.rows, "after": after.rows, "rows": count})
    return count


COPY_CHUNK_BYTES = 1 << 20


def _copy_out(dbapi_conn, sql: str, take: Callable[[bytearray], bytearray], rows_per_take: int) -> int:
    """Run ``COPY … TO STDOUT`` on psycopg's libpq connection directly and hand the data to ``take(buffer)``
    whenever ``COPY_CHUNK_BYTES`` or ``rows_per_take`` messages have arrived (``take`` returns what it keeps). psycopg's
    own ``Copy`` iterator costs a Python generator round per row (about 3 µs, most of the images' time on 100 000
    rows); here one row is one C call. Returns the rows the server reports; errors are psycopg's."""
    import select

    from psycopg import errors
    from psycopg.pq import ExecStatus, TransactionStatus

    pgconn = dbapi_conn.pgconn
    encoding = dbapi_conn.info.encoding

    def readable() -> None:
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()

    def results() -> list:
        out = []
        while True:
            while pgconn.is_busy():
                readable()
            res = pgconn.get_result()
            if res is None:
                return out
            out.append(res)
            if res.status == ExecStatus.COPY_OUT:
                return out

    if not dbapi_conn.autocommit and dbapi_conn.info.transaction_status == TransactionStatus.IDLE:
        dbapi_conn.execute("SELECT 1")  # psycopg opens the transaction (BEGIN) the COPY must run in
    with dbapi_conn.lock:
        pgconn.send_query(sql.encode(encoding))
        while pgconn.flush():
            select.select([], [pgconn.socket], [])
        first = results()
        if not first or first[-1].status != ExecStatus.COPY_OUT:
            bad = [r for r in first if r.status != ExecStatus.COMMAND_OK]
            raise errors.error_from_result(bad[0] if bad else first[0], encoding=encoding)
        buffer = bytearray()
        messages = 0
        failed: BaseException | None = None
        while True:
            nbytes, data = pgconn.get_copy_data(1)
            if nbytes > 0:
                if failed is not None:
                    continue  # draining after an error in take(): the connection must leave COPY state
                buffer += data
                messages += 1
                if messages >= rows_per_take or len(buffer) >= COPY_CHUNK_BYTES:
                    try:
                        buffer = take(buffer)
                    except BaseException as exc:
                        failed = exc
                    messages = 0
            elif nbytes == 0:
                readable()
            else:
                break
        if failed is None:
            try:
                take(buffer)
            except BaseException as exc:
                failed = exc
        final = results()
        if failed is not None:
            raise failed
        errs = [r for r in final if r.status != ExecStatus.COMMAND_OK]
        if errs:
            raise errors.error_from_result(errs[0], encoding=encoding)
        return final[-1].command_tuples if final and final[-1].command_tuples is not None else -1


def _pg_copy(
    conn, sql: str, store: Store, st: Statement, kind: str, header: bytes, pool, chunk_rows: int
) -> tuple[int, int]:
    """Stream ``COPY (sql) TO STDOUT`` into chunks of whole lines (``chunk_rows`` or about 1 MB each), compressed
    in a thread while the copy goes on, stored in order. Returns (rows copied, chunks)."""
    pending: list = []
    seq = 0

    def flush(wait: bool) -> None:
        nonlocal seq
        while pending and (wait or pending[0][1].done()):
            rows, future = pending.pop(0)
            data = future.result()
            store.add_chunk(st.index, kind, seq, rows, data, sha256(data))
            seq += 1

    def take(buffer: bytearray) -> bytearray:
        end = buffer.rfind(b"\n") + 1  # whole lines only (PostgreSQL sends one row per message)
        if end:
            piece = bytes(buffer[:end])
            pending.append((piece.count(b"\n"), pool.submit(_compress_pgcopy, header, piece)))
            del buffer[:end]
        flush(False)
        return buffer

    count = _copy_out(conn.connection.dbapi_connection, sql, take, chunk_rows)
    flush(True)
    if seq == 0:
        data = zlib.compress(header, 1)
        store.add_chunk(st.index, kind, 0, 0, data, sha256(data))
        seq = 1
    return count, seq


def _compress_pgcopy(header: bytes, piece: bytes) -> bytes:
    return zlib.compress(header + piece, 1)


def _run_pg(conn, st: Statement, store: Store, expected, chunk_rows: int) -> int:
    """PostgreSQL: the images travel as COPY text (no value is turned into a Python object while the change runs);
    the after-images come from ``COPY (UPDATE … RETURNING *)`` — the same statement, not a second read."""
    from concurrent.futures import ThreadPoolExecutor

    probe = conn.connection.dbapi_connection.cursor()
    probe.execute(sqlglot.parse_one(st.image_sql, read="postgres").limit(0).sql(dialect="postgres"))
    columns = [d.name for d in probe.description]
    oids = [d.type_code for d in probe.description]
    probe.close()
    header = (
        json.dumps(
            {"f": "pgcopy", "c": columns, "o": oids}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        + b"\n"
    )
    want = expected[st.index] if expected and st.index < len(expected) else None
    with ThreadPoolExecutor(max_workers=1) as pool:
        step(store, "image", {"statement": st.index, "sql": st.image_sql})
        before_rows, _ = _pg_copy(
            conn, f"COPY ({st.image_sql}) TO STDOUT", store, st, "before", header, pool, chunk_rows
        )
        if want is not None and before_rows != want:
            raise Mismatch(
                f"{st.label}：审批时估计影响 {want} 行，执行时条件选中 {before_rows} 行，数据已变化，已回退；请重新审核"
            )
        step(store, "statement", {"statement": st.index, "sql": st.sql[:2000], "before_rows": before_rows})
        if st.kind == "update":
            count, _ = _pg_copy(
                conn, f"COPY ({st.sql} RETURNING *) TO STDOUT", store, st, "after", header, pool, chunk_rows
            )
            after_rows = count
        else:
            count = conn.exec_driver_sql(st.sql).rowcount
            after_rows = 0
    _check_count(st, count, before_rows, want)
    step(store, "images", {"statement": st.index, "before": before_rows, "after": after_rows, "rows": count})
    return count


def _check_count(st: Statement, count: int, images: int, want: int | None) -> None:
    if count != images:
        raise Mismatch(f"{st.label}：实际影响 {count} 行，与前镜像 {images} 行不符，已回退")
    if want is not None and count != want:
        raise Mismatch(f"{st.label}：实际影响 {count} 行，审批时估计 {want} 行，已回退")


def verify(engine: sa.Engine, plan: list[Statement], source: ChunkSource, sample: int = 1000) -> dict:
    """After commit: read back up to ``sample`` rows per statement by key and compare them with the after-images
    (absent for DELETE). Rows someone changed since are reported, not an error of the change."""
    checked, differ, keys_differ = 0, 0, []
    with engine.connect() as conn:
        for st in plan:
            if st.kind == "ddl":
                continue
            table = _table(conn, st)
            if st.kind == "delete":
                _, before = load_images(source, st, "before")
                keys = list(before)[:sample]
                now = {
                    tuple(r[i] for i in _pk_index(list(r._fields), st.pk)): r
                    for r in _select_by_keys(conn, table, st.pk, keys, False)
                }
                checked += len(keys)
                for k in keys:
                    if k in now:
                        differ += 1
                        keys_differ.append(list(map(str, k)))
                continue
            columns, after = load_images(source, st, "after")
            keys = list(after)[:sample]
            idx = _pk_index(columns, st.pk)
            now = {}
            for r in _select_by_keys(conn, table, st.pk, keys, False):
                now[tuple(r[i] for i in idx)] = tuple(r)
            checked += len(keys)
            for k in keys:
                if now.get(k) != after[k]:
                    differ += 1
                    keys_differ.append(list(map(str, k)))
        conn.rollback()
    return {"checked": checked, "differ": differ, "keys": keys_differ[:50]}


# --- rollback ---------------------------------------------------------------------------------------------------


def _diff(columns: list[str], expected: tuple | None, current: tuple | None) -> dict:
    if expected is None or current is None:
        return {}
    return {
        c: {"expected": e, "current": n} for c, e, n in zip(columns, expected, current, strict=True) if e != n
    }


def _conflicts_of(conn, plan: list[Statement], source: ChunkSource, lock: bool):
    """Per statement: (statement, table, columns, before, after, current, conflicting keys + how they differ)."""
    out = []
    for st in reversed(plan):
        if st.kind == "ddl":
            raise ChangeError(f"{st.label} 是 DDL，没有镜像，不能一键回滚；请按回退方案人工处理")
        table = _table(conn, st)
        columns, before = load_images(source, st, "before")
        acols, after = load_images(source, st, "after")
        columns = columns or acols
        keys = list(before) if st.kind != "insert" else list(after)
        idx = _pk_index([c.name for c in table.columns], st.pk)
        current = {}
        for r in _select_by_keys(conn, table, st.pk, keys, lock):
            current[tuple(r[i] for i in idx)] = tuple(r)
        conflicts = []
        for k in keys:
            now = current.get(k)
            if st.kind == "delete":
                if now is not None:
                    conflicts.append({"key": k, "diff": {}, "row": "该行已被删除，现在又存在"})
            elif now != after.get(k):
                row = "该行变更后已被删除" if now is None else ""
                conflicts.append({"key": k, "diff": _diff(columns, after.get(k), now), "row": row})
        out.append((st, table, columns, before, after, current, conflicts))
    return out


def preview_rollback(engine: sa.Engine, plan: list[Statement], source: ChunkSource) -> list[dict]:
    """The rows a rollback would not touch because someone changed them since the change (read-only)."""
    with engine.connect() as conn:
        found = _conflicts_of(conn, plan, source, lock=False)
        conn.rollback()
    return [_conflict_out(st, c) for st, *_, conflicts in found for c in conflicts]


def _conflict_out(st: Statement, c: dict) -> dict:
    return {
        "statement": st.index,
        "table": st.table,
        "key": list(c["key"]),
        "diff": c["diff"],
        "row": c.get("row", ""),
    }


def rollback(
    engine: sa.Engine,
    plan: list[Statement],
    source: ChunkSource,
    store: Store,
    *,
    token: str,
    change_ref: str,
    skip_conflicts: bool = False,
) -> Outcome:
    """Restore the before-images in one target transaction (with its own marker). Rows whose current value differs
    from the after-image are conflicts: never overwritten. With conflicts the rollback is refused unless the user
    chose ``skip_conflicts`` (then those rows stay as they are and the rest is restored)."""
    step(store, "begin", {"token": token, "skip_conflicts": skip_conflicts})
    ensure_marker_table(engine)
    restored: list[int] = []
    with engine.connect() as conn:
        _set_lock_timeout(conn)
        step(store, "connect", {"backend": _backend_id(conn)})
        try:
            step(store, "check", {})
            found = _conflicts_of(conn, plan, source, lock=True)
            conflicts = [_conflict_out(st, c) for st, *_, cs in found for c in cs]
            if conflicts and not skip_conflicts:
                conn.rollback()
                store.journal("refused", {"conflicts": len(conflicts)})
                return Outcome(
                    "refused", f"有 {len(conflicts)} 行在变更后又被修改，未回滚任何行", conflicts=conflicts
                )
            for st, table, columns, before, after, _current, cs in found:
                skip = {c["key"] for c in cs}
                step(store, "restore", {"statement": st.index, "rows": len(before or after) - len(skip)})
                restored.append(_restore(conn, st, table, columns, before, after, skip))
            step(store, "commit", {"rows": restored, "conflicts": len(conflicts)})
            conn.execute(
                MARKER.insert().values(
                    token=token, change_ref=change_ref, kind="rollback", state="committed", at=_now()
                )
            )
        except (Mismatch, ChangeError) as exc:
            conn.rollback()
            store.journal("failed", {"reason": str(exc)})
            return Outcome("failed", str(exc))
        except Exception as exc:
            conn.rollback()
            store.journal("failed", {"reason": db_message(exc)})
            return Outcome("failed", f"回滚出错：{db_message(exc)}，已撤销，目标库未改动")
        if (unknown := _commit(conn, store)) is not None:
            return unknown
    step(store, "committed", {"rows": restored})
    return Outcome("applied", "", sum(restored), list(reversed(restored)), conflicts=conflicts)


def _restore(conn, st: Statement, table: sa.Table, columns, before, after, skip: set) -> int:
    names = [c.name for c in table.columns]
    pk = st.pk
    if st.kind == "insert":
        keys = [k for k in after if k not in skip]
        cols = [table.c[p] for p in pk]
        done = 0
        for start in range(0, len(keys), KEY_BATCH):
            batch = keys[start : start + KEY_BATCH]
            cond = cols[0].in_([k[0] for k in batch]) if len(cols) == 1 else sa.tuple_(*cols).in_(batch)
            done += conn.execute(table.delete().where(cond)).rowcount
        if done != len(keys):
            raise Mismatch(f"{st.label}：应删除 {len(keys)} 行，实际 {done} 行，回滚已撤销")
        return done
    rows = [(k, before[k]) for k in before if k not in skip]
    if st.kind == "delete":
        if rows:
            conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for _, r in rows])
    else:
        changed = sorted(
            {c for k, r in rows for c, b, a in zip(columns, r, after.get(k) or r, strict=True) if b != a}
        )
        if changed and rows:
            stmt = (
                table.update()
                .where(sa.and_(*[table.c[p] == sa.bindparam(f"k_{n}") for n, p in enumerate(pk)]))
                .values({c: sa.bindparam(f"v_{n}") for n, c in enumerate(changed)})
            )
            pos = {c: columns.index(c) for c in columns}
            params = []
            for k, r in rows:
                item = {f"k_{n}": v for n, v in enumerate(k)}
                item.update({f"v_{n}": r[pos[c]] for n, c in enumerate(changed)})
                params.append(item)
            for start in range(0, len(params), CHUNK_ROWS):
                conn.execute(stmt, params[start : start + CHUNK_ROWS])
    # read back: every restored row must equal its before-image exactly
    idx = _pk_index(names, pk)
    keys = [k for k, _ in rows]
    got = {}
    for r in _select_by_keys(conn, table, pk, keys, False):
        got[tuple(r[i] for i in idx)] = tuple(r)
    order = [names.index(c) for c in columns]
    wrong = [k for k, r in rows if k not in got or tuple(got[k][i] for i in order) != tuple(r)]
    if wrong:
        raise Mismatch(
            f"{st.label}：回滚后有 {len(wrong)} 行与前镜像不一致（如主键 {list(wrong[0])}），回滚已撤销"
        )
    return len(rows)


def new_token() -> str:
    return uuid.uuid4().hex


def table_checksum(engine: sa.Engine, table: str, pk: list[str]) -> tuple[int, str]:
    """(rows, SHA-256 over every row in key order): whether a table is exactly as it was."""
    digest = hashlib.sha256()
    n = 0
    with engine.connect() as conn:
        t = sa.Table(table, sa.MetaData(), autoload_with=conn)
        for row in conn.execute(sa.select(t).order_by(*[t.c[p] for p in pk])):
            digest.update(repr(tuple(row)).encode())
            n += 1
    return n, digest.hexdigest()
