"""SQLite 目标库: which files on this server a data check may open, decided by what a name resolves to.

A SQLite target is named by a path or a URI (``/a/b.sqlite3``, ``b.sqlite3``, ``~/b.sqlite3``, ``sqlite:///…``,
``sqlite+pysqlite:///file:…?uri=true``, ``file:…?mode=ro``). Whatever the form, the name is parsed the way SQLite
and SQLAlchemy would read it, resolved to a real path (``~``, relative paths, symbolic links, ``/proc/self/fd/N``,
``/dev/fd/N``, ``/proc/<pid>/root/…``) and then judged by the file it is — its device and inode — not by its
spelling:

- it must be a regular file inside the configured directory (``CAIWEI_SQLITE_TARGET_DIR``, by default
  ``var/targets/``), or the configured sandbox file;
- it must never be one of the platform's own files: the Django database and its ``-wal``/``-shm``/``-journal``,
  the huey file, the keys under ``var/`` and anything else under ``var/`` outside that directory — compared by
  device and inode, so a hard link is caught as well (a file with more than one link is refused outright);
- URI parameters that change what is opened (``mode=memory``, ``vfs=``, ``immutable``, ``:memory:``…) are refused.

The check runs when a target is saved and again each time a connection is opened: the name is re-resolved right
before opening and the resolved real path is opened (read-only), so a file swapped for a symbolic
link after it was saved is judged as what it has become.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote, unquote

import sqlalchemy as sa
from django.conf import settings
from sqlalchemy.pool import NullPool

SQLITE_URL = re.compile(r"^sqlite(\+[a-z0-9_]+)?://", re.I)
TRUE = {"1", "true", "yes", "on"}
SETTING = "CAIWEI_SQLITE_TARGET_DIR"


class TargetRefused(ValueError):  # noqa: N818  (a refusal, shown to the user as it is)
    """The name does not lead to a file a data check may open; the message says why, in Chinese."""


def target_dir() -> Path:
    """The directory SQLite targets must live in (created on first use)."""
    configured = getattr(settings, SETTING, "") or Path(settings.VAR_DIR) / "targets"
    path = Path(configured).expanduser()
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)
    return Path(os.path.realpath(path))


def sandbox_file() -> Path | None:
    """The configured sandbox file, when the sandbox is SQLite (``caiwei checks sandbox`` registers it)."""
    from caiwei.sandbox.service import default_url

    try:
        url = sa.engine.make_url(default_url())
    except sa.exc.ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database.startswith(("file:", ":")):
        return None
    return Path(os.path.realpath(Path(url.database).expanduser()))


# --- parsing ----------------------------------------------------------------------------------------------------


def parse(name: str) -> tuple[str, dict[str, list[str]]]:
    """The file path a SQLite name points at and its URI parameters (keys in lower case)."""
    text = (name or "").strip()
    params: dict[str, list[str]] = {}
    if not text:
        raise TargetRefused("请填写 SQLite 数据库文件的路径")
    if "\x00" in text:
        raise TargetRefused("文件路径中不能含有空字符")
    if SQLITE_URL.match(text):
        try:
            url = sa.engine.make_url(text)
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise TargetRefused(f"SQLite 地址无法解析：{exc}") from exc
        if url.get_backend_name() != "sqlite":
            raise TargetRefused("这里只能填写 SQLite 数据库文件")
        if url.host or url.username or url.password or url.port:
            raise TargetRefused("SQLite 地址中不能含有主机、端口或账号")
        for key, value in url.query.items():
            params.setdefault(key.lower(), []).extend(value if isinstance(value, tuple) else [value])
        text = url.database or ""
        if not text:
            raise TargetRefused("不支持内存数据库，请填写 SQLite 数据库文件的路径")
    if text.lower().startswith("file:"):
        text, more = _file_uri(text)
        for key, values in more.items():
            params.setdefault(key, []).extend(values)
    elif "?" in text or "#" in text:
        raise TargetRefused("文件路径中不能含有 ? 或 #；连接参数请用 file: URI 的写法")
    if not text or text.startswith(":memory") or text == ":":
        raise TargetRefused("不支持内存数据库，请填写 SQLite 数据库文件的路径")
    if "\x00" in text:  # a %00 decoded from a URI
        raise TargetRefused("文件路径中不能含有空字符")
    return text, params


def _file_uri(text: str) -> tuple[str, dict[str, list[str]]]:
    """A ``file:`` URI as SQLite reads it: an empty or ``localhost`` authority, a percent-decoded path, parameters."""
    rest = text[len("file:") :]
    rest = rest.split("#", 1)[0]
    rest, _, query = rest.partition("?")
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if authority.lower() not in ("", "localhost"):
            raise TargetRefused(f"file: URI 中不能指定主机“{authority}”")
        rest = slash + path
    params: dict[str, list[str]] = {}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        params.setdefault(unquote(key).lower(), []).append(unquote(value))
    return unquote(rest), params


def check_params(params: dict[str, list[str]]) -> None:
    """Only parameters that change nothing about which file is opened, and how, are accepted."""
    for key, values in params.items():
        lowered = [v.strip().lower() for v in values]
        if key == "vfs":
            raise TargetRefused("不允许指定 SQLite 的 vfs 参数")
        if key == "immutable":
            raise TargetRefused("不允许使用 immutable 参数")
        if key == "mode":
            if "memory" in lowered:
                raise TargetRefused("不支持内存数据库（mode=memory）")
            if any(v not in ("ro", "rw") for v in lowered):
                raise TargetRefused(f"不支持的打开方式 mode={values[0]}，只能是 ro")
        elif key == "uri":
            if any(v not in TRUE for v in lowered):
                raise TargetRefused(f"不支持的参数 uri={values[0]}")
        else:
            raise TargetRefused(f"不支持的连接参数“{key}”")


# --- what the platform owns -------------------------------------------------------------------------------------


def _companions(name: str) -> list[str]:
    return [name, f"{name}-wal", f"{name}-shm", f"{name}-journal"]


def platform_files() -> list[Path]:
    """The platform's own files by name: its SQLite databases with their companions, the huey file, the keys."""
    names: list[str] = []
    for db in settings.DATABASES.values():
        if "sqlite" in str(db.get("ENGINE", "")):
            for name in (db.get("NAME"), (db.get("TEST") or {}).get("NAME")):
                if name and str(name) != ":memory:" and not str(name).startswith("file:"):
                    names += _companions(str(name))
    huey = getattr(settings, "HUEY", None)
    if isinstance(huey, dict) and huey.get("filename"):
        names += _companions(str(huey["filename"]))
    var = Path(settings.VAR_DIR)
    names += [str(var / n) for n in ("secret_key", "vault_key", "audit_key")]
    return [Path(n) for n in names]


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def platform_inodes(allowed: Path, sandbox: Path | None) -> set[tuple[int, int]]:
    """Device and inode of every platform file: those named above, and every file under ``var/`` (and the media and
    audit seal directories, wherever they are) except the allowed directory and the sandbox file."""
    found: set[tuple[int, int]] = set()
    for path in platform_files():
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    var = Path(os.path.realpath(settings.VAR_DIR))
    roots = {var}
    for extra in (getattr(settings, "MEDIA_ROOT", ""), getattr(settings, "CAIWEI_AUDIT_SEAL_DIR", "")):
        if extra:
            roots.add(Path(os.path.realpath(extra)))
    for root in roots:
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = [d for d in dirs if here / d != allowed]
            for name in files:
                path = here / name
                if path == sandbox:
                    continue
                try:
                    st = os.stat(path, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.add((st.st_dev, st.st_ino))
    return found


# --- the decision -----------------------------------------------------------------------------------------------


def resolve(name: str) -> tuple[Path, os.stat_result]:
    """The real path of an allowed SQLite target and its stat, or TargetRefused saying why not."""
    text, params = parse(name)
    check_params(params)
    allowed = target_dir()
    path = Path(text).expanduser()
    if not path.is_absolute():  # relative names are relative to the targets directory, whatever the cwd
        path = allowed / path
    real = Path(os.path.realpath(path))
    sandbox = sandbox_file()
    var = Path(os.path.realpath(settings.VAR_DIR))
    is_sandbox = sandbox is not None and real == sandbox
    in_allowed = _inside(real, allowed)
    if not is_sandbox and (
        real == var or (_inside(real, var) and not (in_allowed and _inside(allowed, var)))
    ):
        raise TargetRefused("不能把财维自己的数据文件登记为目标库")
    if not (is_sandbox or in_allowed):
        raise TargetRefused(f"SQLite 目标库只能放在目录 {allowed} 下（设置项 {SETTING}）")
    try:
        st = os.stat(real)
    except FileNotFoundError as exc:
        raise TargetRefused(f"文件 {real} 不存在") from exc
    except OSError as exc:
        raise TargetRefused(f"无法读取文件 {real}：{exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise TargetRefused(f"{real} 不是普通文件")
    if (st.st_dev, st.st_ino) in platform_inodes(allowed, sandbox):
        raise TargetRefused("不能把财维自己的数据文件登记为目标库")
    if st.st_nlink > 1:
        raise TargetRefused(f"文件 {real} 有多个硬链接，无法确认它是哪个文件，请复制一份后再登记")
    return real, st


def engine(name: str) -> sa.Engine:
    """An engine whose every connection re-resolves ``name`` right before opening, opens the resolved real path
    read-only without following a link, and checks that the file opened is the file judged."""
    resolve(name)  # a refusal is reported before anything else happens

    def creator() -> sqlite3.Connection:
        real, before = resolve(name)
        uri = f"file:{quote(str(real), safe='/')}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            after = os.stat(real, follow_symlinks=False)
        except OSError:
            after = None
        if after is None or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            conn.close()
            raise TargetRefused("打开时文件已被替换，已停止连接")
        return conn

    return sa.create_engine("sqlite://", creator=creator, poolclass=NullPool)
