"""Bank file intake 银行文件取件: the agent banks' files come from an SFTP server pulled on a schedule, from a watched
folder on this server, or from an upload on the page; each file is taken whole or refused whole.

- **SFTP** (paramiko): the connection is refused before any password or key is sent unless the server shows the
  host key whose fingerprint is pinned on the source (``SHA256:…``, as ``ssh-keygen -lf`` writes it) — an unknown
  or changed key is refused, never added. The remote directory is listed; only regular files matching the source's
  glob, quiet for ``SETTLE_SECONDS`` (a file still being written is left for the next pull) and not larger than
  ``max_bytes()`` are fetched. The remote files are left where they are: a file is known by its name, size and
  modification time (a unique constraint), and its content by SHA-256, so the same file is never taken twice.
- **Watched folder**: the same, from a folder under ``CAIWEI_RECON_WATCH_DIR`` (by default ``var/recon-watch``);
  each file taken is moved to ``done/``, or to ``quarantine/`` beside a ``.reason.json`` saying why.
- **Upload**: ``accept_upload`` for the page.

A remote or local name with ``/``, ``\\``, ``..``, a drive letter or a control character is refused (recorded,
never fetched). Each file is written to a temporary name in ``var/recon-inbox/<区划>/<银行>/`` while its size is
counted and its SHA-256 computed, read through with the source's bank format (``formats.read``: the whole file and
its own totals), then renamed — into the inbox when accepted, into its ``quarantine/`` when refused with the
reader's error (file, line, byte offset, field). One ``BankFileIntake`` row per file says which.

A source that cannot be pulled (server down, host key, login, remote directory) records the Chinese reason on the
source (``last_ok``, ``last_message``, ``failures`` in a row) and logs a WARNING; no ticket is opened (the desk has
no system-raised ticket yet). The worker's tick starts one ``recon.pull`` job per due source (jobs.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import posixpath
import re
import socket
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from caiwei.inputs import text_problem

from . import formats
from .models import BankFileIntake, BankFileSource, BankFormat

log = logging.getLogger("caiwei.recon.intake")

CALENDAR = "workday"  # the business calendar of "business days only" (as reconciliation's date windows)
# A file modified more recently than this may still be being written: left for the next pull.
SETTLE_SECONDS = 60
CONNECT_TIMEOUT = 20  # seconds for the TCP connection, the SSH banner, the handshake and the login
IO_TIMEOUT = 60  # seconds without an answer while listing or reading
MAX_BYTES = 200 * 1024 * 1024
CHUNK = 1 << 16
NAME_BYTES = 200
BANK_CODE = re.compile(r"[A-Za-z0-9_-]{1,12}")
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
INTERVAL_MINUTES = (1, 7 * 24 * 60)
DONE, QUARANTINE = "done", "quarantine"


class IntakeError(ValueError):
    """A source that cannot be pulled, or an upload that cannot be taken; the message says why, in Chinese."""


class HostKeyRefused(IntakeError):  # noqa: N818  (a refusal, shown as it is)
    """The SFTP server did not show the pinned host key."""


# --- settings and places ------------------------------------------------------------------------------------------


def max_bytes() -> int:
    return int(getattr(settings, "CAIWEI_RECON_MAX_FILE_BYTES", 0) or MAX_BYTES)


def settle_seconds() -> int:
    value = getattr(settings, "CAIWEI_RECON_SETTLE_SECONDS", None)
    return SETTLE_SECONDS if value is None else int(value)


def watch_root() -> Path:
    """The only directory watched folders may lie in (created on first use)."""
    configured = getattr(settings, "CAIWEI_RECON_WATCH_DIR", "") or Path(settings.VAR_DIR) / "recon-watch"
    path = Path(configured).expanduser()
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)
    return Path(os.path.realpath(path))


def inbox_root() -> Path:
    configured = getattr(settings, "CAIWEI_RECON_INBOX_DIR", "") or Path(settings.VAR_DIR) / "recon-inbox"
    return Path(configured).expanduser()


def inbox_dir(region_code: str, bank_code: str) -> Path:
    """var/recon-inbox/<区划>/<银行>/ — both parts checked, so neither can lead elsewhere."""
    if not re.fullmatch(r"\d{6}(\d{3})?", region_code or ""):
        raise IntakeError(f"区划代码“{region_code}”不正确")
    problem = bank_code_problem(bank_code)
    if problem:
        raise IntakeError(problem)
    path = inbox_root() / region_code / bank_code
    path.mkdir(parents=True, exist_ok=True)
    return path


def bank_code_problem(code: str) -> str | None:
    if not BANK_CODE.fullmatch(code or ""):
        return "银行编码应为 1～12 位字母、数字、下划线或连字符"
    return None


def name_problem(name: str) -> str | None:
    """Why a file name from a server, a folder or an upload is refused (Chinese), or None. A name is only ever a
    name: no separator, no parent, no absolute path, nothing invisible."""
    if not name or name in (".", ".."):
        return "文件名为空或是“.”“..”"
    if "/" in name or "\\" in name:
        return "文件名含路径分隔符（/ 或 \\），可能是路径穿越，拒收"
    if ".." in name:
        return "文件名含“..”，可能是路径穿越，拒收"
    if re.match(r"[A-Za-z]:", name):
        return "文件名是带盘符的路径，拒收"
    problem = text_problem(name)
    if problem:
        return f"文件名{problem}，拒收"
    if len(name.encode("utf-8")) > NAME_BYTES:
        return f"文件名超过 {NAME_BYTES} 字节，拒收"
    return None


def fingerprint(key) -> str:
    """A host key's fingerprint as OpenSSH writes it: ``SHA256:`` and unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def normalise_fingerprint(text: str) -> str:
    """The pinned fingerprint as stored (``SHA256:…``); '' when none is pinned; IntakeError when malformed."""
    text = (text or "").strip()
    if not text:
        return ""
    parts = text.split()
    # Accept a line of ``ssh-keygen -lf`` (bits, fingerprint, comment, type) as well as the fingerprint alone.
    found = next((p for p in parts if p.startswith("SHA256:")), parts[0])
    if not found.startswith("SHA256:"):
        found = "SHA256:" + found
    found = found.rstrip("=")
    if not FINGERPRINT.fullmatch(found):
        raise IntakeError("主机密钥指纹应写成 SHA256: 加 43 位 base64（ssh-keygen -lf 显示的写法）")
    return found


def source_problems(source: BankFileSource) -> dict[str, str]:
    """What is wrong with a source's settings, by field (Chinese); the model's clean() raises them."""
    out = {}
    problem = bank_code_problem(source.bank_code)
    if problem:
        out["bank_code"] = problem
    fmt = source.bank_format if source.bank_format_id else None
    if fmt is not None and fmt.bank_code and fmt.bank_code != source.bank_code:
        out["bank_format"] = f"格式“{fmt}”属于银行 {fmt.bank_code}，与来源的银行编码 {source.bank_code} 不同"
    if not INTERVAL_MINUTES[0] <= (source.interval_minutes or 0) <= INTERVAL_MINUTES[1]:
        out["interval_minutes"] = f"拉取间隔应在 {INTERVAL_MINUTES[0]}～{INTERVAL_MINUTES[1]} 分钟之间"
    pattern_problem = text_problem(source.pattern or "")
    if not (source.pattern or "").strip() or pattern_problem or "/" in source.pattern:
        out["pattern"] = "文件名模式不能为空、不能含“/”或控制字符，如 *_支付清单_*.csv"
    if source.kind == BankFileSource.Kind.SFTP:
        if not source.host:
            out["host"] = "请填写 SFTP 主机"
        elif text_problem(source.host) or any(c.isspace() for c in source.host):
            out["host"] = "主机名不能含空白或控制字符"
        if not 1 <= (source.port or 0) <= 65535:
            out["port"] = "端口应在 1～65535 之间"
        if not source.username:
            out["username"] = "请填写 SFTP 用户名"
        if not posixpath.isabs(source.directory or "") or text_problem(source.directory or ""):
            out["directory"] = "远程目录应写绝对路径，如 /outgoing"
        try:
            source.host_key = normalise_fingerprint(source.host_key)
        except IntakeError as exc:
            out["host_key"] = str(exc)
        else:
            if not source.host_key:
                out["host_key"] = "请登记服务器的主机密钥指纹（SHA256:…），未登记的服务器一律拒绝连接"
    else:
        try:
            watched_dir(source.directory)
        except IntakeError as exc:
            out["directory"] = str(exc)
    database = source.reconcile_database if source.reconcile_database_id else None
    if database is not None and source.region_id:
        region = source.region
        if not database.target.region.path.startswith(region.path):
            out["reconcile_database"] = f"取件后对账的财政数据库应属于{region.name}或其下级"
    return out


def watched_dir(directory: str) -> Path:
    """A watched folder, judged by the real path it resolves to: inside the watch root, never the inbox."""
    if not directory or text_problem(directory):
        raise IntakeError("请填写监视目录")
    root = watch_root()
    path = Path(directory).expanduser()
    if not path.is_absolute():
        path = root / path
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise IntakeError(f"监视目录须在 {root} 之内（可用环境变量 CAIWEI_RECON_WATCH_DIR 另设）")
    if not real.is_dir():
        raise IntakeError(f"监视目录“{real}”不存在或不是目录")
    return real


# --- taking one file ----------------------------------------------------------------------------------------------


class FileTooLarge(IntakeError):
    """Past the size limit; nothing is kept."""


class FileChanged(IntakeError):
    """The file's size changed while it was read (still being written): left for the next pull."""


def size_text(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} 字节"


class _Sink:
    """Writes to the temporary file, counting and hashing, and stops past the size limit."""

    def __init__(self, handle: BinaryIO, limit: int):
        self.handle, self.limit, self.size, self.hash = handle, limit, 0, hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise FileTooLarge(f"文件超过 {size_text(self.limit)} 的上限，未取")
        self.hash.update(chunk)
        self.handle.write(chunk)


@dataclass
class Origin:
    """Where a file belongs: region, bank, format, and the source or the uploader."""

    region: object
    bank_code: str
    bank_format: BankFormat
    source: BankFileSource | None = None
    user: object = None

    def definition(self) -> formats.Definition:
        try:
            return formats.parse_definition(self.bank_format.definition)
        except formats.DefinitionError as exc:
            raise IntakeError(f"银行文件格式“{self.bank_format}”有误：{exc}") from exc


def _free_name(folder: Path, name: str, sha: str) -> Path:
    """``folder/name``, or when taken ``folder/<sha256 前 12 位>/name``: a stored file keeps its own name (the name
    errors and breaks show)."""
    target = folder / name
    n = 0
    while target.exists() or target.with_name(target.name + ".reason.json").exists():
        n += 1
        target = folder / (sha[:12] if n == 1 else f"{sha[:12]}-{n}") / name
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path(settings.VAR_DIR)))
    except ValueError:
        return str(path)


def stored_path(intake: BankFileIntake) -> Path:
    """Where an intake's file is (its path is stored relative to var/)."""
    path = Path(intake.path)
    return path if path.is_absolute() else Path(settings.VAR_DIR) / path


def _record(origin: Origin, **fields) -> BankFileIntake | None:
    try:
        with transaction.atomic():  # a savepoint: a clash must not spoil a caller's transaction
            return BankFileIntake.objects.create(
                region=origin.region,
                source=origin.source,
                bank_code=origin.bank_code,
                bank_format=origin.bank_format,
                format_version=origin.bank_format.version,
                uploaded_by=origin.user,
                **fields,
            )
    except IntegrityError:  # another worker took the same file at the same moment
        return None


def _refusal(name: str, problem: str) -> dict:
    return {
        "file": name,
        "line": None,
        "offset": None,
        "cell": "",
        "field": "文件",
        "problem": problem,
        "message": f"{name}：{problem}",
    }


def refuse_unfetched(origin: Origin, name: str, size: int, mtime: datetime | None, problem: str):
    """Record a file refused without being fetched (its name or size); None when it was recorded before."""
    return _record(
        origin,
        name=name[:255],
        size=size,
        mtime=mtime,
        state=BankFileIntake.State.REFUSED,
        error=_refusal(name, problem),
    )


def take(
    origin: Origin,
    definition: formats.Definition,
    name: str,
    mtime: datetime | None,
    copy: Callable[[_Sink], None],
    expect_size: int | None = None,
) -> BankFileIntake | None:
    """Copy one file into the inbox under a temporary name (``copy`` writes its bytes to the sink), read it through
    with the bank format, and keep it whole — accepted into the inbox, refused into its quarantine/ — or, when the
    same content was already accepted for this bank, drop it as a duplicate. None when another worker took it;
    FileTooLarge past the limit and FileChanged when the size read is not the size listed (nothing kept)."""
    folder = inbox_dir(origin.region.code, origin.bank_code)
    # a hidden temporary name that keeps the file's suffix (openpyxl reads .xlsx only under that suffix)
    tmp = folder / f".part-{uuid.uuid4().hex}{Path(name).suffix[:16]}"
    try:
        with tmp.open("xb") as handle:
            sink = _Sink(handle, max_bytes())
            copy(sink)
            handle.flush()
            os.fsync(handle.fileno())
        sha, size = sink.hash.hexdigest(), sink.size
        if expect_size is not None and size != expect_size:
            raise FileChanged(f"列目录时 {expect_size} 字节，读到 {size} 字节，可能仍在写入，下次再取")
        earlier = BankFileIntake.objects.filter(
            region=origin.region, bank_code=origin.bank_code, sha256=sha, state=BankFileIntake.State.ACCEPTED
        ).first()
        if earlier is not None:
            tmp.unlink()
            return _record(
                origin,
                name=name,
                size=size,
                mtime=mtime,
                sha256=sha,
                state=BankFileIntake.State.DUPLICATE,
                error=_refusal(name, f"与第 {earlier.pk} 号取件“{earlier.name}”内容相同，不再接收"),
            )
        count, amount, error = 0, Decimal(0), None
        try:
            for record in formats.read(definition, tmp, name=name):
                count += 1
                amount += record.values["amount"]
        except formats.FormatError as exc:
            error = exc.as_dict()
        except Exception as exc:  # noqa: BLE001 — the readers raise FormatError; anything else refuses the file too
            log.exception("读取银行文件 %s 时出错", name)
            error = _refusal(name, f"读取出错：{type(exc).__name__}")
        target = _free_name(folder / QUARANTINE if error else folder, name, sha)
        os.replace(tmp, target)
        if error:
            _write_reason(target, error)
        intake = _record(
            origin,
            name=name,
            size=size,
            mtime=mtime,
            sha256=sha,
            state=BankFileIntake.State.REFUSED if error else BankFileIntake.State.ACCEPTED,
            error=error,
            lines=count if not error else 0,
            amount=amount if not error else 0,
            path=_relative(target),
        )
        if intake is None:
            target.unlink(missing_ok=True)
            target.with_name(target.name + ".reason.json").unlink(missing_ok=True)
        elif error:
            log.warning("银行文件拒收：%s", error["message"])
        return intake
    finally:
        tmp.unlink(missing_ok=True)


def _write_reason(path: Path, error: dict) -> None:
    reason = path.with_name(path.name + ".reason.json")
    tmp = reason.with_name(f".{reason.name}.part")
    tmp.write_text(json.dumps(error, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, reason)


def summary(intake: BankFileIntake) -> dict:
    return {
        "id": intake.pk,
        "name": intake.name,
        "size": intake.size,
        "sha256": intake.sha256,
        "state": intake.state,
        "lines": intake.lines,
        "amount": f"{intake.amount:.2f}",
        "path": intake.path,
        "error": intake.error,
    }


# --- pulling a source ---------------------------------------------------------------------------------------------


@dataclass
class PullResult:
    source: int
    name: str
    kind: str
    ok: bool = True
    message: str = ""
    accepted: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {name, reason}: left for now (still being written…)

    def add(self, intake: BankFileIntake | None) -> None:
        if intake is None:
            return
        bucket = {
            BankFileIntake.State.ACCEPTED: self.accepted,
            BankFileIntake.State.REFUSED: self.refused,
            BankFileIntake.State.DUPLICATE: self.duplicates,
        }[intake.state]
        bucket.append(summary(intake))

    def text(self) -> str:
        if not self.ok:
            return self.message
        return (
            f"接收 {len(self.accepted)} 个文件，拒收 {len(self.refused)} 个，重复 {len(self.duplicates)} 个，"
            f"暂缓 {len(self.skipped)} 个"
        )

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "name": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "message": self.message or self.text(),
            "accepted": self.accepted,
            "refused": self.refused,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
        }


@dataclass
class _Entry:
    name: str
    size: int
    mtime: datetime | None
    regular: bool


def _from_epoch(seconds) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(int(seconds), tz=UTC)


def _candidates(
    source: BankFileSource,
    origin: Origin,
    entries: Iterable[_Entry],
    result: PullResult,
    now: datetime,
    seen: Callable[[_Entry], None] | None = None,
) -> Iterator[_Entry]:
    """The entries to fetch now: regular, matching, safe, quiet, within the size limit, and not taken before
    (``seen`` is told of those taken before: a watched folder moves them aside). Hidden names (a leading dot, as
    uploads in progress are often named) wait, unless unsafe."""
    settle, limit = settle_seconds(), max_bytes()
    taken = set(source.intakes.values_list("name", "size", "mtime"))
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.regular or not fnmatchcase(entry.name, source.pattern or "*"):
            continue
        if (entry.name[:255], entry.size, entry.mtime) in taken:
            if seen:
                seen(entry)
            continue
        problem = name_problem(entry.name)
        if problem is None and entry.name.startswith("."):
            continue
        if problem is None and entry.size > limit:
            problem = f"文件 {entry.size} 字节，超过 {size_text(limit)} 的上限，未取"
        if problem:
            result.add(refuse_unfetched(origin, entry.name, entry.size, entry.mtime, problem))
            log.warning("银行文件拒收：%s %s：%s", source, entry.name, problem)
            continue
        if entry.mtime is not None and (now - entry.mtime).total_seconds() < settle:
            result.skipped.append(
                {"name": entry.name, "reason": f"{settle} 秒内有改动，可能仍在写入，下次再取"}
            )
            continue
        yield entry


def _load_key(text: str):
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    data = text.encode()
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IntakeError("保存的私钥无法读取（应为不带口令的 OpenSSH 或 PEM 私钥）") from exc
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        cls = paramiko.Ed25519Key
    elif isinstance(loaded, rsa.RSAPrivateKey):
        cls = paramiko.RSAKey
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        cls = paramiko.ECDSAKey
    else:
        raise IntakeError("不支持的私钥类型（可用 Ed25519、RSA、ECDSA）")
    return cls.from_private_key(io.StringIO(text))


def _connect(host: str, port: int):
    """A started SSH transport (not yet authenticated), or IntakeError saying in Chinese why not."""
    import paramiko

    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except socket.gaierror as exc:
        raise IntakeError(f"连不上 SFTP 服务器 {where}：主机名无法解析") from exc
    except ConnectionRefusedError as exc:
        raise IntakeError(
            f"连不上 SFTP 服务器 {where}：连接被拒绝（服务未运行、端口不对或被防火墙拒绝）"
        ) from exc
    except TimeoutError as exc:
        raise IntakeError(
            f"连不上 SFTP 服务器 {where}：{CONNECT_TIMEOUT} 秒内无响应（网络不通或被防火墙丢弃）"
        ) from exc
    except OSError as exc:
        raise IntakeError(f"连不上 SFTP 服务器 {where}：{exc.strerror or exc}") from exc
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = CONNECT_TIMEOUT
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise IntakeError(f"与 SFTP 服务器 {where} 建立 SSH 连接失败：{exc or type(exc).__name__}") from exc
    return transport


def scan_host_key(host: str, port: int = 22) -> dict:
    """The host key an SFTP server shows (type and fingerprint), for an operator to check with the bank and pin."""
    transport = _connect(host, port)
    try:
        key = transport.get_remote_server_key()
        return {"type": key.get_name(), "fingerprint": fingerprint(key)}
    finally:
        transport.close()


def _check_host_key(source: BankFileSource, transport) -> None:
    where = f"{source.host}:{source.port}"
    key = transport.get_remote_server_key()
    shown = fingerprint(key)
    pinned = normalise_fingerprint(source.host_key)
    if not pinned:
        raise HostKeyRefused(
            f"SFTP 服务器 {where} 的主机密钥指纹未登记，拒绝连接；服务器出示的是 {key.get_name()} {shown}，"
            "请与银行核对无误后登记"
        )
    if not hmac.compare_digest(shown, pinned):
        raise HostKeyRefused(
            f"SFTP 服务器 {where} 出示的主机密钥与登记的不符，可能被冒充，已拒绝连接"
            f"（登记的是 {pinned}，服务器出示 {key.get_name()} {shown}）；如银行确已更换密钥，请核对后重新登记"
        )


def _authenticate(source: BankFileSource, transport) -> None:
    import paramiko

    from caiwei.checks.vault import VaultError

    where = f"{source.host}:{source.port}"
    try:
        key_text = source.unsealed_private_key()
        password = source.unsealed_password()
    except VaultError as exc:
        raise IntakeError(
            "无法解密保存的 SFTP 密码或私钥：主机、端口或用户名与保存时不同，或加密密钥有变；请重新输入"
        ) from exc
    if not (key_text or password):
        raise IntakeError(f"SFTP 来源“{source}”没有保存密码或私钥")
    try:
        if key_text:
            try:
                transport.auth_publickey(source.username, _load_key(key_text))
            except paramiko.AuthenticationException:
                if not password:
                    raise
        if not transport.is_authenticated() and password:
            transport.auth_password(source.username, password)
    except paramiko.BadAuthenticationType as exc:
        allowed = "、".join(exc.allowed_types) or "无"
        raise IntakeError(f"SFTP 服务器 {where} 不接受这种登录方式（服务器允许：{allowed}）") from exc
    except paramiko.AuthenticationException as exc:
        raise IntakeError(
            f"登录 SFTP 服务器 {where} 失败：用户名“{source.username}”的密码或私钥不对"
        ) from exc
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise IntakeError(f"登录 SFTP 服务器 {where} 时连接中断：{exc or type(exc).__name__}") from exc


@contextlib.contextmanager
def sftp_session(source: BankFileSource):
    """An SFTP client on the source's server: the host key checked against the pinned one before logging in."""
    import paramiko

    transport = _connect(source.host, int(source.port))
    try:
        _check_host_key(source, transport)
        _authenticate(source, transport)
        try:
            client = paramiko.SFTPClient.from_transport(transport)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise IntakeError(f"SFTP 服务器 {source.host}:{source.port} 未提供 SFTP 服务：{exc}") from exc
        client.get_channel().settimeout(IO_TIMEOUT)
        with client:
            yield client
    finally:
        transport.close()


def _pull_sftp(source: BankFileSource, origin: Origin, result: PullResult, now: datetime) -> None:
    import paramiko

    definition = origin.definition()
    directory = source.directory
    with sftp_session(source) as client:
        try:
            listing = client.listdir_attr(directory)
        except FileNotFoundError as exc:
            raise IntakeError(f"SFTP 服务器上没有远程目录“{directory}”") from exc
        except PermissionError as exc:
            raise IntakeError(f"无权读取 SFTP 远程目录“{directory}”") from exc
        except UnicodeDecodeError as exc:
            raise IntakeError(f"远程目录“{directory}”中有文件名不是 UTF-8 编码，无法列出") from exc
        except (paramiko.SSHException, OSError) as exc:
            raise IntakeError(f"列出 SFTP 远程目录“{directory}”失败：{exc}") from exc
        entries = [
            _Entry(a.filename, int(a.st_size or 0), _from_epoch(a.st_mtime), stat.S_ISREG(a.st_mode or 0))
            for a in listing
        ]
        for entry in _candidates(source, origin, entries, result, now):
            remote = posixpath.join(directory, entry.name)

            def copy(sink: _Sink, remote=remote, size=entry.size) -> None:
                with client.open(remote, "rb") as handle:
                    handle.prefetch(size)
                    while chunk := handle.read(CHUNK):
                        sink.write(chunk)

            try:
                result.add(_take_listed(source, origin, definition, entry, copy, result))
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise IntakeError(
                    f"从 SFTP 服务器读取“{entry.name}”时出错：{exc or type(exc).__name__}"
                ) from exc


def _take_listed(
    source, origin, definition, entry: _Entry, copy, result: PullResult
) -> BankFileIntake | None:
    try:
        return take(origin, definition, entry.name, entry.mtime, copy, expect_size=entry.size)
    except FileChanged as exc:
        result.skipped.append({"name": entry.name, "reason": str(exc)})
    except FileTooLarge as exc:  # grew past the limit after it was listed
        log.warning("银行文件拒收：%s %s：%s", source, entry.name, exc)
        return refuse_unfetched(origin, entry.name, entry.size, entry.mtime, str(exc))
    return None


def _move_aside(path: Path, folder: Path, sha: str, error: dict | None) -> None:
    folder.mkdir(exist_ok=True)
    target = _free_name(folder, path.name, sha or uuid.uuid4().hex)
    os.replace(path, target)
    if error:
        _write_reason(target, error)


def _pull_folder(source: BankFileSource, origin: Origin, result: PullResult, now: datetime) -> None:
    definition = origin.definition()
    folder = watched_dir(source.directory)
    entries = []
    with os.scandir(folder) as it:
        for item in it:
            info = item.stat(follow_symlinks=False)
            entries.append(
                _Entry(item.name, info.st_size, _from_epoch(info.st_mtime), stat.S_ISREG(info.st_mode))
            )

    def seen(entry: _Entry) -> None:  # dropped again as it was: set aside, not left to be listed every time
        problem = "与已取过的文件同名、同大小、同修改时间，未再取"
        _move_aside(folder / entry.name, folder / QUARANTINE, uuid.uuid4().hex, _refusal(entry.name, problem))
        result.skipped.append({"name": entry.name, "reason": problem})

    for entry in _candidates(source, origin, entries, result, now, seen):
        path = folder / entry.name

        def copy(sink: _Sink, path=path) -> None:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    sink.write(chunk)

        intake = _take_listed(source, origin, definition, entry, copy, result)
        result.add(intake)
        if intake is not None:
            aside = QUARANTINE if intake.state != BankFileIntake.State.ACCEPTED else DONE
            _move_aside(path, folder / aside, intake.sha256, intake.error)
    # files refused before fetching (unsafe name, too large) are moved aside too: the folder keeps only what is new
    for refused in result.refused:
        path = folder / refused["name"]
        if not refused["sha256"] and path.is_file() and not path.is_symlink():
            _move_aside(path, folder / QUARANTINE, "", refused["error"])


def pull(source: BankFileSource, now: datetime | None = None) -> PullResult:
    """Fetch what is new at ``source`` now; a failure of the source is recorded on it and logged, not raised."""
    now = now or timezone.now()
    result = PullResult(source.pk, source.name, source.kind)
    origin = Origin(source.region, source.bank_code, source.bank_format, source)
    try:
        if source.kind == BankFileSource.Kind.SFTP:
            _pull_sftp(source, origin, result, now)
        else:
            _pull_folder(source, origin, result, now)
    except IntakeError as exc:
        result.ok, result.message = False, str(exc)
    except OSError as exc:  # the local side: the inbox or the watched folder
        result.ok, result.message = False, f"读写本机文件出错：{exc}"
    if result.ok:
        BankFileSource.objects.filter(pk=source.pk).update(
            last_run_at=now, last_ok=True, last_message=result.text()[:500], failures=0
        )
    else:
        failures = source.failures + 1
        BankFileSource.objects.filter(pk=source.pk).update(
            last_run_at=now, last_ok=False, last_message=result.message[:500], failures=failures
        )
        log.warning(
            "银行文件来源“%s”（第 %s 号）拉取失败（连续第 %s 次）：%s",
            source,
            source.pk,
            failures,
            result.message,
        )
    source.refresh_from_db()
    return result


def accept_upload(
    *, region, bank_code: str, bank_format: BankFormat, name: str, chunks: Iterable[bytes], user=None
) -> BankFileIntake:
    """A file uploaded on the page (the page checks who may): taken like a fetched file; a refused file is recorded
    with its error, an unsafe name or an oversized file raises IntakeError and nothing is kept."""
    problem = name_problem(name) or bank_code_problem(bank_code)
    if problem:
        raise IntakeError(problem)
    origin = Origin(region, bank_code, bank_format, None, user)

    def copy(sink: _Sink) -> None:
        for chunk in chunks:
            sink.write(chunk)

    intake = take(origin, origin.definition(), name, None, copy)
    if intake is None:
        raise IntakeError("文件未能接收，请重试")
    return intake


# --- schedule -----------------------------------------------------------------------------------------------------


def _spec():
    from caiwei.bizcalendar.services import get_calendar

    return get_calendar(CALENDAR).spec()


def _business_day_from(spec, day):
    from caiwei.bizcalendar.engine import is_business_day

    for _ in range(400):
        if is_business_day(spec, day):
            return day
        day += timedelta(days=1)
    return day


def _midnight(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def next_run_at(source: BankFileSource, after: datetime, spec=None) -> datetime:
    """``after`` plus the interval; for business days only, the start of the next business day when that falls on
    a day off (the business calendar ``workday``)."""
    at = after + timedelta(minutes=max(1, source.interval_minutes or 1))
    if not source.business_days_only:
        return at
    day = timezone.localdate(at)
    first = _business_day_from(spec or _spec(), day)
    return at if first == day else _midnight(first)


def due_sources(now: datetime | None = None):
    """Enabled sources whose next pull time has come (or that were never pulled)."""
    now = now or timezone.now()
    return (
        BankFileSource.objects.filter(enabled=True)
        .filter(Q(next_run_at__isnull=True) | Q(next_run_at__lte=now))
        .select_related("region", "bank_format")
        .order_by("pk")
    )


def fire_due(now: datetime | None = None) -> list[int]:
    """Start a ``recon.pull`` job for each due source (the worker's tick, each minute); a source for business days
    only waits, on a day off, for the start of the next business day. A source is claimed by moving its next time
    on in one conditional update, so two workers never start it twice."""
    from caiwei.jobs.runner import start

    now = now or timezone.now()
    spec, started = None, []
    for source in due_sources(now):
        if source.business_days_only:
            spec = spec or _spec()
            today = timezone.localdate(now)
            if _business_day_from(spec, today) != today:
                BankFileSource.objects.filter(pk=source.pk, next_run_at=source.next_run_at).update(
                    next_run_at=_midnight(_business_day_from(spec, today))
                )
                continue
        claimed = BankFileSource.objects.filter(pk=source.pk, next_run_at=source.next_run_at).update(
            next_run_at=next_run_at(source, now, spec)
        )
        if claimed:
            start(
                "recon.pull",
                title=f"拉取银行文件：{source.name}",
                params={"source": source.pk},
                region=source.region,
            )
            started.append(source.pk)
    return started


# --- for a reconciliation -----------------------------------------------------------------------------------------


def bank_files(intakes) -> list[tuple[Path, formats.Definition, str]]:
    """The accepted intakes as ``run_reconciliation``'s bank files: (stored file, its bank's format, bank code). The
    files keep their names in errors and breaks (the stored name may carry a content stamp when a name repeats)."""
    out, parsed = [], {}
    for intake in (
        intakes.filter(state=BankFileIntake.State.ACCEPTED)
        .select_related("bank_format")
        .order_by("fetched_at", "pk")
    ):
        fmt = intake.bank_format
        if fmt.pk not in parsed:
            parsed[fmt.pk] = formats.parse_definition(fmt.definition)
        out.append((stored_path(intake), parsed[fmt.pk], intake.bank_code))
    return out


def reconcile_month(source: BankFileSource, today=None):
    """对账 of the source's bank for the month so far, against the source's finance database, with every file this
    source accepted this month (a later file of a day replaces nothing: each file is read as it came). Started by the
    pull job when the pull took new files; runs in the background like a run from the page (system-initiated: no
    user, recorded in the audit chain as such). A signed month is refused by ``start_run`` with its reason."""
    from django.core.files import File

    from .services import start_run

    today = today or timezone.localdate()
    month = today.replace(day=1)
    intakes = list(
        BankFileIntake.objects.filter(
            source=source, state=BankFileIntake.State.ACCEPTED, fetched_at__date__gte=month
        ).select_related("bank_format")
    )
    handles = [stored_path(intake).open("rb") for intake in intakes]
    try:
        return start_run(
            None,
            region=source.region,
            database=source.reconcile_database,
            period_start=month,
            period_end=today,
            as_of=today,
            uploads=[
                (File(handle, name=intake.name), intake.bank_format, source.bank_code)
                for handle, intake in zip(handles, intakes, strict=True)
            ],
        )
    finally:
        for handle in handles:
            handle.close()
