"""备份引擎: back up a target database with the database's own tools, and check a backup file before it is used.

Plain Python (no Django): pages, the API, the command, the worker and the bench all come through here.

- PostgreSQL: ``pg_dump --format=custom``. The row counts are read in the very snapshot the dump reads: a
  REPEATABLE READ transaction exports its snapshot (``pg_export_snapshot()``), ``pg_dump --snapshot`` dumps from
  it while the same transaction counts the rows of each table.
- MariaDB / MySQL: ``mariadb-dump --single-transaction`` (one consistent snapshot for every table). The dump's own
  snapshot cannot be shared, so the row counts are read from the dump as it is written: each row of an
  extended ``INSERT … VALUES (…),(…)`` is counted by a scanner that skips string literals.
- SQLite: the online backup API (``sqlite3.Connection.backup``) into the backup file; the counts are read from the
  copy itself. With chosen tables, the others are dropped from the copy.

Passwords never appear on a command line: PostgreSQL's through ``PGPASSWORD`` in the child's environment,
MariaDB's in a 0600 option file given with ``--defaults-extra-file`` and removed afterwards.

Every backup file is recorded with its SHA-256; ``verify`` refuses a file whose bytes no longer match.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

POSTGRESQL, MYSQL, SQLITE = "postgresql", "mysql", "sqlite"
DIALECTS = (POSTGRESQL, MYSQL, SQLITE)
SUFFIX = {POSTGRESQL: ".dump", MYSQL: ".sql", SQLITE: ".sqlite3"}
CONNECT_TIMEOUT_S = 15
TOOL_TIMEOUT_S = 6 * 3600
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup, a restore or a check that cannot be done; the message is for the user (Chinese)."""


class ChecksumMismatch(BackupError):
    """The backup file's bytes are not those recorded: it may not be restored."""


@dataclass(frozen=True)
class Conn:
    """Where a database is and as whom. ``database`` is the file path for SQLite."""

    dialect: str
    database: str
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self):
        if self.dialect not in DIALECTS:
            raise BackupError(
                f"不支持备份该类型的数据库：{self.dialect}（支持 PostgreSQL、MariaDB/MySQL、SQLite）"
            )

    def with_database(self, database: str) -> Conn:
        return Conn(self.dialect, database, self.host, self.port, self.user, self.password)

    def url(self, read_only: bool = False) -> sa.URL:
        if self.dialect == SQLITE:
            if read_only:
                return sa.make_url(f"sqlite:///file:{self.database}?mode=ro&uri=true")
            return sa.make_url(f"sqlite:///{self.database}")
        driver = "postgresql+psycopg" if self.dialect == POSTGRESQL else "mysql+pymysql"
        return sa.URL.create(
            driver,
            username=self.user or None,
            password=self.password or None,
            host=self.host or None,
            port=self.port,
            database=self.database or None,
        )

    def engine(self, **kw) -> sa.Engine:
        args = {} if self.dialect == SQLITE else {"connect_timeout": CONNECT_TIMEOUT_S}
        return sa.create_engine(self.url(**kw), poolclass=NullPool, connect_args=args)

    def tool_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL"))}
        env["LC_ALL"] = "C.UTF-8"
        if self.dialect == POSTGRESQL:
            env |= {"PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S), "PGAPPNAME": "caiwei-backup"}
            if self.password:
                env["PGPASSWORD"] = self.password
        return env

    def pg_args(self) -> list[str]:
        args = []
        if self.host:
            args += ["-h", self.host]
        if self.port:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-U", self.user]
        return [*args, "-w"]  # never prompt


@contextmanager
def mysql_options(conn: Conn) -> Iterator[str]:
    """A 0600 option file with the connection (password included), removed when done."""
    folder = tempfile.mkdtemp(prefix="caiwei-my-")
    path = os.path.join(folder, "client.cnf")
    lines = ["[client]"]
    if conn.host:
        lines.append(f"host={conn.host}")
    if conn.port:
        lines.append(f"port={conn.port}")
    if conn.user:
        lines.append(f"user={conn.user}")
    if conn.password:
        escaped = conn.password.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'password="{escaped}"')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    try:
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tool(name: str) -> str:
    found = shutil.which(name) or (shutil.which("mysqldump") if name == "mariadb-dump" else None)
    if found is None and name == "mariadb":
        found = shutil.which("mysql")
    if found is None:
        raise BackupError(f"本机没有找到 {name}，请先安装数据库客户端工具")
    return found


def tool_version(dialect: str) -> str:
    if dialect == SQLITE:
        return f"SQLite 在线备份接口 {sqlite3.sqlite_version}"
    name = "pg_dump" if dialect == POSTGRESQL else "mariadb-dump"
    out = subprocess.run([tool(name), "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else name


def tool_message(stderr: str) -> str:
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return "；".join(lines[-4:])[:600]


# --- tables -----------------------------------------------------------------------------------------------------


def quote(dialect: str, name: str) -> str:
    """A (possibly schema-qualified, PostgreSQL) table name quoted for ``dialect``."""
    q = "`" if dialect == MYSQL else '"'
    parts = name.split(".", 1) if dialect == POSTGRESQL and "." in name else [name]
    return ".".join(q + p.replace(q, q + q) + q for p in parts)


def list_tables(sa_conn: sa.Connection, dialect: str) -> list[str]:
    """The base tables of the database: ``table`` (PostgreSQL's public schema) or ``schema.table``."""
    if dialect == POSTGRESQL:
        rows = sa_conn.exec_driver_sql(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema !~ '^pg_' "
            "ORDER BY 1, 2"
        ).all()
        return [name if schema == "public" else f"{schema}.{name}" for schema, name in rows]
    if dialect == MYSQL:
        rows = sa_conn.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        ).all()
        return [r[0] for r in rows]
    rows = sa_conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
    ).all()
    return [r[0] for r in rows]


def count_rows(sa_conn: sa.Connection, dialect: str, tables: list[str]) -> dict[str, int]:
    return {
        t: int(sa_conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(dialect, t)}").scalar())  # noqa: S608  (quoted name)
        for t in tables
    }


def choose_tables(available: list[str], wanted: list[str] | None) -> list[str]:
    if not wanted:
        return available
    missing = [t for t in wanted if t not in available]
    if missing:
        raise BackupError(f"数据库中没有表：{'、'.join(missing)}")
    return [t for t in available if t in set(wanted)]


# --- files ------------------------------------------------------------------------------------------------------


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | Path, sha256: str) -> None:
    """Refuse a backup file that is missing or whose bytes are not the recorded ones."""
    path = Path(path)
    if not path.is_file():
        raise ChecksumMismatch(f"备份文件 {path} 不存在，不能使用")
    actual = sha256_file(path)
    if actual != sha256:
        raise ChecksumMismatch(
            f"备份文件 {path.name} 校验失败：SHA-256 应为 {sha256[:16]}…，实为 {actual[:16]}…；"
            "文件已损坏或被改动，不能用于恢复"
        )


@dataclass
class BackupResult:
    path: str
    sha256: str
    size: int
    seconds: float
    counts: dict[str, int]
    tables: list[str]
    tool_version: str
    started_at: datetime
    finished_at: datetime
    counts_source: str  # how the counts were read


def backup(conn: Conn, dest: str | Path, tables: list[str] | None = None, timeout_s: int = TOOL_TIMEOUT_S):
    """Back up ``conn`` (all tables, or ``tables``) into the file ``dest``. Raises BackupError (nothing is left
    behind: a partial file is removed)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        raise BackupError(f"备份文件 {dest} 已存在")
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        if conn.dialect == POSTGRESQL:
            chosen, counts, source = _backup_postgresql(conn, dest, tables, timeout_s)
        elif conn.dialect == MYSQL:
            chosen, counts, source = _backup_mysql(conn, dest, tables, timeout_s)
        else:
            chosen, counts, source = _backup_sqlite(conn, dest, tables)
        version = tool_version(conn.dialect)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    os.chmod(dest, 0o600)
    return BackupResult(
        path=str(dest),
        sha256=sha256_file(dest),
        size=dest.stat().st_size,
        seconds=time.perf_counter() - started,
        counts=counts,
        tables=chosen,
        tool_version=version,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        counts_source=source,
    )


def connect_error(exc: Exception) -> BackupError:
    text = str(getattr(exc, "orig", exc)).strip().splitlines()
    return BackupError(f"连接数据库失败：{text[0][:300] if text else exc.__class__.__name__}")


def _backup_postgresql(conn: Conn, dest: Path, tables, timeout_s):
    engine = conn.engine()
    try:
        with engine.connect() as c:
            c = c.execution_options(isolation_level="REPEATABLE READ")
            with c.begin():
                c.exec_driver_sql("SET TRANSACTION READ ONLY")
                snapshot = c.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
                chosen = choose_tables(list_tables(c, POSTGRESQL), tables)
                args = [tool("pg_dump"), *conn.pg_args(), "--format=custom", f"--snapshot={snapshot}"]
                args += ["--no-password", "-f", str(dest)]
                if tables:
                    for t in chosen:
                        args += ["-t", quote(POSTGRESQL, t if "." in t else f"public.{t}")]
                args.append(conn.database)
                child = subprocess.Popen(
                    args, env=conn.tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
                try:
                    counts = count_rows(c, POSTGRESQL, chosen)  # same snapshot, while pg_dump reads
                    _, stderr = child.communicate(timeout=timeout_s)
                except BaseException:
                    child.kill()
                    child.communicate()
                    raise
                if child.returncode != 0:
                    raise BackupError(f"pg_dump 失败：{tool_message(stderr)}")
    except sa.exc.DBAPIError as exc:
        raise connect_error(exc) from exc
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"pg_dump 超过 {timeout_s} 秒未完成，已终止") from exc
    finally:
        engine.dispose()
    return chosen, counts, "与备份同一快照（pg_export_snapshot）"


# The rows of an extended INSERT: a group "(…)" opened at depth 0, strings skipped (backslash escapes, '' doubled).
# mariadb-dump --quick writes "INSERT INTO `t` VALUES" and then one row a line; without it, all rows on one line.
_TOKENS = re.compile(rb"'(?:[^'\\]|\\.|'')*'|[()]", re.S)
_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES")


def count_groups(data: bytes) -> int:
    """Top-level parenthesised groups (rows) in a piece of an INSERT's VALUES list."""
    depth = rows = 0
    for token in _TOKENS.findall(data):
        if token == b"(":
            if depth == 0:
                rows += 1
            depth += 1
        elif token == b")":
            depth -= 1
    return rows


class InsertCounter:
    """Counts the rows of every table in a dump as its lines go by (rows never span lines: newlines are escaped)."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts
        self.table: str | None = None

    def feed(self, line: bytes) -> None:
        if self.table is None:
            if not line.startswith(b"INSERT INTO `"):
                return
            m = _INSERT.match(line)
            if m is None:
                return
            self.table = m.group(1).replace(b"``", b"`").decode("utf-8", "surrogateescape")
            line = line[m.end() :]
        self.counts[self.table] = self.counts.get(self.table, 0) + count_groups(line)
        if line.rstrip().endswith(b";"):
            self.table = None


def _backup_mysql(conn: Conn, dest: Path, tables, timeout_s):
    engine = conn.engine()
    try:
        with engine.connect() as c:
            chosen = choose_tables(list_tables(c, MYSQL), tables)
    except sa.exc.DBAPIError as exc:
        raise connect_error(exc) from exc
    finally:
        engine.dispose()
    counts = dict.fromkeys(chosen, 0)
    with mysql_options(conn) as options:
        args = [tool("mariadb-dump"), f"--defaults-extra-file={options}", "--single-transaction", "--quick"]
        args += ["--hex-blob", "--no-tablespaces", "--default-character-set=utf8mb4", "--skip-dump-date"]
        args += ["--triggers", "--net-buffer-length=1048576", conn.database]
        if tables:
            args += chosen
        child = subprocess.Popen(
            args, env=conn.tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False
        )
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(child.stderr.read()), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout_s
        counter = InsertCounter(counts)
        try:
            with open(dest, "wb") as out:
                for raw in child.stdout:
                    out.write(raw)
                    counter.feed(raw)
                    if time.monotonic() > deadline:
                        raise BackupError(f"mariadb-dump 超过 {timeout_s} 秒未完成，已终止")
            child.wait(timeout=60)
        except BaseException:
            child.kill()
            child.wait()
            raise
        reader.join(timeout=10)
    if child.returncode != 0:
        stderr = b"".join(errors).decode("utf-8", "replace")
        raise BackupError(f"mariadb-dump 失败：{tool_message(stderr)}")
    return chosen, counts, "备份文件中逐行计数（与备份同一快照）"


def _backup_sqlite(conn: Conn, dest: Path, tables):
    path = Path(conn.database)
    if not path.is_file():
        raise BackupError(f"SQLite 数据库文件 {path} 不存在")
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"打开 SQLite 数据库失败：{exc}") from exc
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target, pages=4096)
            available = [
                r[0]
                for r in target.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
                )
            ]
            chosen = choose_tables(available, tables)
            if tables:
                for t in available:
                    if t not in chosen:
                        target.execute(f"DROP TABLE {quote(SQLITE, t)}")
                target.commit()
                target.execute("VACUUM")
            counts = {
                t: int(target.execute(f"SELECT COUNT(*) FROM {quote(SQLITE, t)}").fetchone()[0])  # noqa: S608
                for t in chosen
            }
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite 在线备份失败：{exc}") from exc
    finally:
        source.close()
    return chosen, counts, "备份文件中计数（与备份同一快照）"


# --- retention --------------------------------------------------------------------------------------------------


def to_prune(
    backups: list[tuple[int, datetime]], keep: int | None, days: int | None, now: datetime
) -> list[int]:
    """Of the successful backups (id, finished at) of one schedule, the ids retention removes: beyond the newest
    ``keep``, or older than ``days`` days. The newest backup is always kept."""
    ordered = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    out = []
    for n, (pk, at) in enumerate(ordered):
        if n == 0:
            continue
        if (keep and n >= keep) or (days and at < now - timedelta(days=days)):
            out.append(pk)
    return out
