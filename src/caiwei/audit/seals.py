"""封存点: signed checkpoints of the audit chain, appended to a file outside the database.

Anyone who can write the database can delete the last rows and put back a head value they saw earlier; the
database alone then looks intact. A seal (n, seq, hash, time, previous seal's MAC, MAC with the audit key) kept
in ``var/audit-seals/seals.jsonl`` remembers how far the chain reached, so ``verify`` finds rows missing behind
it or replaced after it. Seals are written by the periodic tick (``jobs.seal_tick``), after ``verify`` and after
each export; the auditor exports the file (page, API, ``caiwei audit seals``) and can verify against that copy.

A seal is only ever written for a state that extends the previous seal: the rows since then are checked first
(link, MAC, and the head's MAC), so a truncated database is never sealed over.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .chain import (
    GENESIS,
    HASHED_FIELDS,
    Seal,
    SealFileError,
    check_seals,
    head_mac,
    parse_seal,
    seal_mac,
    verify_rows,
)
from .keys import audit_key
from .models import AuditEvent, AuditHead

log = logging.getLogger(__name__)

FILENAME = "seals.jsonl"


class SealError(RuntimeError):
    """The chain does not extend the last seal (or the seal file does not check): nothing is sealed."""


def seal_time(seal: Seal) -> datetime:
    return datetime.strptime(seal.at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def seal_time_text(seal: Seal) -> str:
    from django.utils import timezone

    return timezone.localtime(seal_time(seal)).strftime("%Y-%m-%d %H:%M:%S")


def seal_dir() -> Path:
    configured = getattr(settings, "CAIWEI_AUDIT_SEAL_DIR", None) or os.environ.get("CAIWEI_AUDIT_SEAL_DIR")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "audit-seals"


def seal_path() -> Path:
    return seal_dir() / FILENAME


def interval() -> timedelta:
    minutes = getattr(settings, "CAIWEI_AUDIT_SEAL_MINUTES", None) or os.environ.get(
        "CAIWEI_AUDIT_SEAL_MINUTES"
    )
    return timedelta(minutes=float(minutes or 5))


def load(path: Path | None = None) -> list[Seal]:
    """Every seal of a file, checked (SealFileError names the first bad line); [] when there is no file."""
    path = path or seal_path()
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return check_seals(audit_key(), f)


def read_bytes() -> bytes:
    path = seal_path()
    if not path.exists():
        return b""
    with path.open("rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        return f.read()


def _last_line(f) -> str:
    """The last non-empty line of the open seal file, read backwards from the end."""
    end = f.seek(0, os.SEEK_END)
    size = min(end, 4096)
    while size:
        f.seek(end - size)
        lines = [ln for ln in f.read(size).decode("utf-8", errors="replace").splitlines() if ln.strip()]
        if lines and (size >= end or len(lines) > 1):
            return lines[-1]
        if size >= end:
            break
        size = min(end, size * 2)
    return ""


@contextmanager
def _locked_file() -> Iterator:
    directory = seal_dir()
    created_dir = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILENAME
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "rb+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        if os.fstat(fd).st_size == 0:
            os.chmod(path, 0o600)
            _fsync_dir(directory)
            if created_dir:
                _fsync_dir(directory.parent)
        yield f


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latest() -> Seal | None:
    """The last seal of the file, its MAC checked; None when nothing has been sealed yet."""
    path = seal_path()
    if not path.exists():
        return None
    with path.open("rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        line = _last_line(f)
    return _checked_last(line)


def _checked_last(line: str) -> Seal | None:
    if not line:
        return None
    last = parse_seal(line, 0)
    if seal_mac(audit_key(), last.body()) != last.mac:
        raise SealError(f"封存文件最后一条（第 {last.n} 条）的校验码不符，封存文件被改动")
    return last


def _check_since(last: Seal | None, target: tuple[int, str]) -> None:
    """The rows after the last seal up to ``target`` link to it and check; refuse (SealError) otherwise."""
    start = (0, GENESIS)
    if last is not None:
        row = AuditEvent.objects.filter(seq=last.seq).values_list("hash", flat=True).first()
        if row != last.hash:
            raise SealError(f"第 {last.seq} 行与最近的封存点不符（记录被删除或替换），不写封存点")
        start = (last.seq, last.hash)
    rows = (
        AuditEvent.objects.filter(seq__gt=start[0], seq__lte=target[0])
        .order_by("seq")
        .values(*HASHED_FIELDS, "hash")
        .iterator(chunk_size=5000)
    )
    broken = verify_rows(audit_key(), rows, target, start=start, flag_repairs=False)
    if broken is not None:
        raise SealError(f"审计链在第 {broken.seq} 行断裂，不写封存点：{broken.reason}")


def seal(point: tuple[int, str] | None = None) -> Seal | None:
    """Append a seal of ``point`` (a verified (seq, hash)) or of the current head, if it moved past the last seal.

    Runs at once; ``seal_quietly`` and the tick wait for the caller's transaction to commit. Returns the new
    seal, or None when there is nothing new to seal. Raises SealError when the head is missing or does not
    check, or the chain does not extend the last seal: then nothing is written and the last seal keeps its word.
    """
    key = audit_key()
    with _locked_file() as f:
        last = _checked_last(_last_line(f))
        head = AuditHead.objects.filter(pk=1).values_list("seq", "hash", "mac").first()
        if head is None:
            raise SealError("链头缺失，不写封存点")
        if head_mac(key, head[0], head[1]) != head[2]:
            raise SealError(f"链头（第 {head[0]} 行）的校验码不符，不写封存点")
        target = point or (head[0], head[1])
        if last is not None and target[0] < last.seq:
            if point is None:
                raise SealError(
                    f"链头只到第 {head[0]} 行，落后于最近的封存点（第 {last.seq} 行）：尾部被截断，不写封存点"
                )
            return None  # a verify that walked the rows before a newer seal was written: nothing to add
        if target[0] == 0:
            return None
        if last is not None and target[0] == last.seq:
            if target[1] != last.hash:
                raise SealError(f"第 {last.seq} 行与最近的封存点不符（记录被删除或替换），不写封存点")
            return None
        _check_since(last, target)
        new = Seal(
            n=last.n + 1 if last else 1,
            seq=target[0],
            hash=target[1],
            at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            prev=last.mac if last else GENESIS,
        ).signed(key)
        f.write((new.line() + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    log.info("审计链封存点 #%s：第 %s 行", new.n, new.seq)
    return new


def _defer(fn) -> bool:
    """Inside a transaction, run ``fn`` once it commits instead: a seal must never cover a row that may still be
    rolled back (and a test, which never commits, never seals by accident)."""
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(fn)
        return True
    return False


def seal_if_due() -> Seal | None:
    """The periodic tick: seal the head when the last seal is older than the interval (5 minutes by default)."""
    if _defer(_seal_if_due):
        return None
    return _seal_if_due()


def _seal_if_due() -> Seal | None:
    last = latest()
    if last is not None and datetime.now(UTC) - seal_time(last) < interval():
        return None
    return seal()


def seal_quietly(point: tuple[int, str] | None = None) -> Seal | None:
    """Seal after a verify or an export; a chain that cannot be sealed is logged, never raised to the caller."""
    if _defer(lambda: _seal_logged(point)):
        return None
    return _seal_logged(point)


def _seal_logged(point: tuple[int, str] | None) -> Seal | None:
    try:
        return seal(point)
    except (SealError, SealFileError) as exc:
        log.error("审计链未封存：%s", exc)
        return None


def export_seals() -> tuple[bytes, int]:
    """The seal file as it stands (sealing the current head first when the chain allows), with its line count,
    for the auditor's export; the caller records the export in the audit log."""
    seal_quietly()
    data = read_bytes()
    return data, sum(1 for line in data.splitlines() if line.strip())


def export_name() -> str:
    from django.utils import timezone

    return f"audit-seals-{timezone.localtime():%Y%m%d-%H%M%S}.jsonl"
