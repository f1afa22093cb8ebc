"""按范围恢复与恢复演练的引擎: restore from a backup file into a scratch database, compare with today's rows, turn
the rows chosen into SQL. Plain Python (no Django).

- ``check_condition``: a WHERE over one table, parsed by sqlglot in the target's dialect and accepted only as a
  read-only predicate over that table's own columns (no sub-query, no function outside the data checks' list, no
  parameter), then written back in that dialect.
- ``restore_table``: one table of a backup into a staging database — PostgreSQL: ``pg_restore`` of the table, its
  data and its own constraints (the primary key) picked from the archive's table of contents; MariaDB: that table's
  part of the dump (between its ``-- Table structure`` markers, with the dump's header and footer); SQLite: the
  backup file itself, opened read-only.
- ``restore_all``: the whole backup into a scratch database (DR drills).
- ``range_diff``: the checksum-bisection table diff of ``caiwei recon diff`` (recon/diff.py), both sides narrowed
  by the condition: rows only in the backup (deleted since), only today (added since), and changed rows with the
  columns that differ.
- ``restore_statements``: for the keys chosen, UPDATE … WHERE key (the changed columns back to the backup's
  values), INSERT (rows deleted since) and DELETE (rows added since), as literal SQL in the target's dialect.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from caiwei.recon.diff import DiffResult, Side, TableDiff, kind_of, reflect

from .backup import MYSQL, POSTGRESQL, SQLITE, BackupError, Conn, mysql_options, tool, tool_message

SQLGLOT = {POSTGRESQL: "postgres", MYSQL: "mysql", SQLITE: "sqlite"}
TOOL_TIMEOUT_S = 6 * 3600
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CHANGED, ONLY_BACKUP, ONLY_LIVE = "changed", "only_backup", "only_live"
KINDS = {CHANGED: "内容不同", ONLY_BACKUP: "仅在备份中（此后被删除）", ONLY_LIVE: "仅在当前库中（此后新增）"}


# --- the condition ------------------------------------------------------------------------------------------------


def check_condition(condition: str, table: str, columns: list[str], dialect: str) -> str:
    """The condition as SQL of ``dialect``, or BackupError naming what is wrong (in Chinese)."""
    from caiwei.checks.custom import ALLOWED_FUNCTIONS, FORBIDDEN, WHAT, _function_name, _sql_problem

    text = (condition or "").strip()
    if not text:
        return ""
    if len(text) > 2000:
        raise BackupError("条件过长（最多 2000 个字符）")
    try:
        statements = [t for t in sqlglot.parse(text, read=SQLGLOT[dialect]) if t is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if getattr(exc, "errors", None) else {}
        near = f"“{first['highlight']}”附近" if first.get("highlight") else ""
        raise BackupError(
            f"条件无法解析（第 {first.get('col', '?')} 列{near}：{_sql_problem(first.get('description') or '')}）"
        ) from None
    except sqlglot.errors.SqlglotError:
        raise BackupError("条件无法解析（引号未闭合或含有无法识别的字符）") from None
    if len(statements) != 1:
        raise BackupError(f"条件只能是一个判断，不能用分号连接多条语句（现有 {len(statements)} 条）")
    tree = statements[0]
    problems = []
    if isinstance(tree, exp.Query) or list(tree.find_all(exp.Query, exp.Subquery)):
        problems.append("条件中不能有子查询或另一条语句")
    forbidden = sorted(
        {WHAT.get(type(n).__name__, type(n).__name__.upper()) for n in tree.find_all(*FORBIDDEN)}
    )
    if forbidden:
        problems.append(f"条件只能是只读的判断，不能含 {'、'.join(forbidden)}")
    functions = sorted({_function_name(f) for f in tree.find_all(exp.Func)} - ALLOWED_FUNCTIONS)
    if functions:
        problems.append(f"条件中不允许的函数：{'、'.join(functions)}")
    if list(tree.find_all(exp.Placeholder, exp.Parameter)):
        problems.append("条件中不能有参数占位符，请直接写值")
    if list(tree.find_all(exp.Star)):
        problems.append("条件中不能有 *")
    known = {c.lower() for c in columns}
    short = table.rsplit(".", 1)[-1].lower()
    unknown, foreign = set(), set()
    for column in tree.find_all(exp.Column):
        if column.table and column.table.lower() != short:
            foreign.add(f"{column.table}.{column.name}")
        elif column.name.lower() not in known:
            unknown.add(column.name)
    if foreign:
        problems.append(f"只能引用表 {table} 自己的列：{'、'.join(sorted(foreign))}")
    if unknown:
        problems.append(f"表 {table} 没有列：{'、'.join(sorted(unknown))}")
    if isinstance(tree, exp.Column | exp.Literal):
        problems.append("条件应为判断（如 amount > 100 或 status IN ('1','2')），而不是单个列或值")
    if problems:
        raise BackupError("；".join(problems))
    for column in tree.find_all(exp.Column):
        column.set("table", None)  # the staging and the live table go by the same bare name
    return tree.sql(dialect=SQLGLOT[dialect])


# --- scratch databases --------------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BackupError(
            f"临时库名“{name}”不合规（小写字母开头，仅含小写字母、数字和下划线，最长 63 个字符）"
        )
    return name


def create_database(server: Conn, name: str) -> Conn:
    """A new empty database ``name`` on ``server`` (dropped first if a previous attempt left it)."""
    check_name(name)
    drop_database(server, name)
    engine = server.engine()
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            if server.dialect == POSTGRESQL:
                c.exec_driver_sql(f'CREATE DATABASE "{name}"')
            else:
                c.exec_driver_sql(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                )
    except sa.exc.DBAPIError as exc:
        raise BackupError(f"创建临时库 {name} 失败：{str(exc.orig).strip().splitlines()[0][:300]}") from exc
    finally:
        engine.dispose()
    return server.with_database(name)


def drop_database(server: Conn, name: str) -> None:
    if server.dialect == SQLITE:
        Path(name).unlink(missing_ok=True)
        return
    check_name(name)
    engine = server.engine()
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            if server.dialect == POSTGRESQL:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    except sa.exc.DBAPIError as exc:
        raise BackupError(f"删除临时库 {name} 失败：{str(exc.orig).strip().splitlines()[0][:300]}") from exc
    finally:
        engine.dispose()


def _run(args: list[str], env: dict, stdin=None, what: str = "") -> None:
    try:
        out = subprocess.run(
            args, env=env, stdin=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{what} 超过 {TOOL_TIMEOUT_S} 秒未完成，已终止") from exc
    if out.returncode != 0:
        raise BackupError(f"{what} 失败：{tool_message(out.stderr)}")


# pg_restore -l: "215; 1259 16385 TABLE public t owner", "3170; 2606 16391 CONSTRAINT public t t_pkey owner"
_TOC = re.compile(r"^(\d+); (\d+) (\d+) (TABLE DATA|TABLE|CONSTRAINT|SCHEMA) (\S+) (.+) (\S+)$")


def table_toc(listing: str, table: str) -> list[str]:
    """The archive entries that rebuild ``table`` alone: its schema (when not public), the table, its data and its
    own constraints (primary key, unique, check) — not foreign keys, indexes, defaults or grants."""
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    picked = []
    for line in listing.splitlines():
        m = _TOC.match(line.strip())
        if not m:
            continue
        desc, nsp, obj = m.group(4), m.group(5), m.group(6)
        if (
            (desc == "SCHEMA" and nsp == "-" and obj == schema and schema != "public")
            or (desc in ("TABLE", "TABLE DATA") and nsp == schema and obj == name)
            or (desc == "CONSTRAINT" and nsp == schema and obj.startswith(f"{name} "))
        ):
            picked.append(line.strip())
    return picked


def restore_table(server: Conn, backup_path: str, table: str, name: str) -> Conn:
    """One table of the backup into the new staging database ``name`` on ``server`` (for SQLite: the backup file
    itself, read-only). Returns the staging database."""
    if server.dialect == SQLITE:
        return Conn(SQLITE, str(backup_path))
    staging = create_database(server, name)
    try:
        if server.dialect == POSTGRESQL:
            listing = subprocess.run(
                [tool("pg_restore"), "-l", str(backup_path)], capture_output=True, text=True, timeout=600
            )
            if listing.returncode != 0:
                raise BackupError(f"读取备份目录失败：{tool_message(listing.stderr)}")
            entries = table_toc(listing.stdout, table)
            if not any(" TABLE DATA " in e for e in entries):
                raise BackupError(f"备份中没有表 {table}")
            with tempfile.TemporaryDirectory(prefix="caiwei-toc-") as folder:
                toc = os.path.join(folder, "toc.list")
                Path(toc).write_text("\n".join(entries) + "\n", encoding="utf-8")
                args = [
                    tool("pg_restore"),
                    *server.pg_args(),
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                ]
                _run([*args, "-L", toc, "-d", name, str(backup_path)], server.tool_env(), what="pg_restore")
        else:
            with tempfile.TemporaryDirectory(prefix="caiwei-part-") as folder:
                part = os.path.join(folder, "part.sql")
                if not mysql_section(backup_path, table, part):
                    raise BackupError(f"备份中没有表 {table}")
                _mysql_load(staging, part)
    except BaseException:
        drop_database(server, name)
        raise
    return staging


_SECTION = re.compile(
    rb"^-- (Table structure for table|Temporary table structure for view|Final view structure for view|"
    rb"Dumping events|Dumping routines)"
)
_FOOTER = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"


def mysql_section(dump: str, table: str, out_path: str) -> bool:
    """Write the dump's header, ``table``'s part (structure, data, triggers) and the footer to ``out_path``."""
    marker = f"-- Table structure for table `{table.replace('`', '``')}`".encode()
    found = False
    state = "header"
    with open(dump, "rb") as src, open(out_path, "wb") as out:
        for line in src:
            if line.startswith(_FOOTER):
                state = "footer"
            elif _SECTION.match(line):
                if line.rstrip(b"\r\n") == marker:
                    state, found = "table", True
                else:
                    state = "other"
            if state in ("header", "table", "footer"):
                out.write(line)
    return found


def _mysql_load(staging: Conn, sql_path: str) -> None:
    with mysql_options(staging) as options, open(sql_path, "rb") as stdin:
        args = [tool("mariadb"), f"--defaults-extra-file={options}", "--default-character-set=utf8mb4"]
        _run([*args, "--binary-mode", staging.database], staging.tool_env(), stdin=stdin, what="mariadb 导入")


def restore_all(server: Conn, backup_path: str, name: str) -> Conn:
    """The whole backup into a new scratch database ``name`` (SQLite: a copy of the file at the path ``name``)."""
    if server.dialect == SQLITE:
        target = Path(name)
        if target.resolve() == Path(backup_path).resolve():
            raise BackupError("临时库不能是备份文件本身")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(backup_path, target)
        with sqlite3.connect(target) as c:
            result = c.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise BackupError(f"恢复出的 SQLite 文件完整性检查未通过：{result}")
        return Conn(SQLITE, str(target))
    scratch = create_database(server, name)
    try:
        if server.dialect == POSTGRESQL:
            args = [tool("pg_restore"), *server.pg_args(), "--no-owner", "--no-privileges", "--exit-on-error"]
            _run([*args, "--jobs=2", "-d", name, str(backup_path)], server.tool_env(), what="pg_restore")
        else:
            _mysql_load(scratch, str(backup_path))
    except BaseException:
        drop_database(server, name)
        raise
    return scratch


# --- the diff -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RangeSide(Side):
    """A side of the table diff narrowed to the rows matching a condition (our own checked SQL)."""

    where: Any = None

    def predicate(self, seg, integer):
        base = super().predicate(seg, integer)
        return sa.and_(base, self.where) if self.where is not None else base


class RangeDiff(TableDiff):
    def __init__(self, backup: sa.Engine, live: sa.Engine, table: str, where_sql: str = "", **options):
        super().__init__(backup, live, table, **options)
        if where_sql:
            for name in ("left", "right"):
                old = getattr(self, name)
                values = {f.name: getattr(old, f.name) for f in dataclasses.fields(Side)}
                old.pool.shutdown()
                # our own checked SQL; a colon inside a literal is not a bind parameter
                where = sa.text("(" + where_sql.replace(":", "\\:") + ")")
                setattr(self, name, RangeSide(**values, where=where))


def range_diff(backup: sa.Engine, live: sa.Engine, table: str, where_sql: str = "", key=None) -> DiffResult:
    """The rows of ``table`` matching ``where_sql``: backup (left) against today (right)."""
    return RangeDiff(backup, live, table, where_sql, key=key).run()


def table_columns(engine: sa.Engine, table: str) -> tuple[list[str], list[str]]:
    """(columns, primary key columns) of ``table``."""
    t = reflect(engine, table)
    return [c.name for c in t.columns], [c.name for c in t.primary_key.columns]


# --- SQL for the rows chosen ----------------------------------------------------------------------------------------


def coerce(value: Any, type_: sa.types.TypeEngine) -> Any:
    """A key value as stored in JSON (text for dates and decimals) back to what the column takes."""
    if value is None:
        return None
    kind = kind_of(type_)
    try:
        if kind == "int":
            return int(value)
        if kind == "decimal":
            return Decimal(str(value))
        if kind == "date" and isinstance(value, str):
            return dt.date.fromisoformat(value[:10])
        if kind == "datetime" and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
    except (ValueError, ArithmeticError) as exc:
        raise BackupError(f"主键值“{value}”无法转换为列的类型") from exc
    return value


def _key_clause(table: sa.Table, key: list[str], values: list) -> sa.ColumnElement:
    return sa.and_(*[table.c[k] == coerce(v, table.c[k].type) for k, v in zip(key, values, strict=True)])


def _fetch(engine: sa.Engine, table: sa.Table, key: list[str], keys: list[list]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    with engine.connect() as c:
        for i in range(0, len(keys), 200):
            batch = keys[i : i + 200]
            rows = c.execute(sa.select(table).where(sa.or_(*[_key_clause(table, key, k) for k in batch])))
            for row in rows.mappings():
                out[tuple(str(row[k]) for k in key)] = dict(row)
    return out


def plain_dialect(dialect):
    """``dialect`` rendering SQL to be read and run as written: a named paramstyle, so that a percent sign in a
    value is not doubled for the driver (psycopg, PyMySQL); what the server told at connect time is kept."""
    plain = type(dialect)(paramstyle="named")
    for name in ("server_version_info", "_backslash_escapes", "_is_mariadb", "default_schema_name"):
        if name in dialect.__dict__:
            setattr(plain, name, dialect.__dict__[name])
    return plain


def literal(stmt, dialect) -> str:
    try:
        return str(stmt.compile(dialect=plain_dialect(dialect), compile_kwargs={"literal_binds": True}))
    except (sa.exc.CompileError, NotImplementedError, TypeError) as exc:
        raise BackupError(f"无法把该行的值写成 SQL：{exc}") from exc


def restore_statements(
    backup: sa.Engine, live: sa.Engine, table: str, key: list[str], picks: list[dict]
) -> list[str]:
    """SQL that brings today's rows of the keys picked back to the backup's: ``picks`` are
    ``{"kind": changed|only_backup|only_live, "key": [...], "columns": [...]}`` (columns for changed rows)."""
    live_table = reflect(live, table)
    backup_table = reflect(backup, table)
    wanted = [p["key"] for p in picks if p["kind"] in (CHANGED, ONLY_BACKUP)]
    rows = _fetch(backup, backup_table, key, wanted) if wanted else {}
    dialect = live.dialect
    statements = []
    for pick in picks:
        values = list(pick["key"])
        where = _key_clause(live_table, key, values)
        ident = tuple(str(coerce(v, live_table.c[k].type)) for k, v in zip(key, values, strict=True))
        if pick["kind"] == ONLY_LIVE:
            statements.append(literal(sa.delete(live_table).where(where), dialect))
            continue
        row = rows.get(ident)
        if row is None:
            raise BackupError(f"备份中找不到主键为 {'/'.join(map(str, values))} 的行")
        if pick["kind"] == ONLY_BACKUP:
            data = {c.name: row[c.name] for c in live_table.columns if c.name in row}
            statements.append(literal(sa.insert(live_table).values(**data), dialect))
        else:
            columns = [c for c in pick.get("columns") or [] if c in live_table.c and c not in key]
            if not columns:
                columns = [c.name for c in live_table.columns if c.name not in key and c.name in row]
            data = {c: row[c] for c in columns}
            statements.append(literal(sa.update(live_table).where(where).values(**data), dialect))
    return statements


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def diff_rows(result: DiffResult, limit: int = 5000) -> tuple[list[dict], bool]:
    """The differences as rows for the grid (kind, key, changed columns with both values), at most ``limit``."""
    rows: list[dict] = []
    for c in result.changed:
        rows.append(
            {
                "kind": CHANGED,
                "key": [jsonable(v) for v in c.key],
                "columns": {n: {"backup": a, "live": b} for n, (a, b) in c.columns.items()},
            }
        )
    rows += [{"kind": ONLY_BACKUP, "key": [jsonable(v) for v in k], "columns": {}} for k in result.only_left]
    rows += [{"kind": ONLY_LIVE, "key": [jsonable(v) for v in k], "columns": {}} for k in result.only_right]
    return rows[:limit], len(rows) > limit
