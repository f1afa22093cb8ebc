"""The hash chain 审计链: each row's hash is HMAC-SM3 over the previous hash and the row's canonical JSON.

Two more things are keyed with the same audit key, each under its own domain tag so no MAC can stand in for
another: the head (the last sequence number and hash, so it cannot be rewound to an arbitrary value) and the
seals (checkpoints kept in a file outside the database, so a truncated or replaced database is found).

No Django import: the chain rules are tested and reused (verify, export) on plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

GENESIS = "0" * 64
# The fields that are hashed, in the order they are documented; changing this list breaks every chain.
HASHED_FIELDS = (
    "seq",
    "at",
    "action",
    "actor",
    "actor_id",
    "ip",
    "request_id",
    "source",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "detail",
    "prev_hash",
)
# The action of the row the log appends when it finds the head missing or forged (see log.record).
CHAIN_BREAK = "chain_break"
HEAD_TAG = b"caiwei-audit-head\n"
SEAL_TAG = b"caiwei-audit-seal\n"
SEAL_FIELDS = ("n", "seq", "hash", "at", "prev")


def canonical_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(row: Mapping[str, Any]) -> bytes:
    data = {name: row.get(name) for name in HASHED_FIELDS}
    if isinstance(data["at"], datetime):
        data["at"] = canonical_instant(data["at"])
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _mac(key: bytes, data: bytes) -> str:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize().hex()


def row_hash(key: bytes, row: Mapping[str, Any]) -> str:
    return _mac(key, canonical_bytes(row))


def head_mac(key: bytes, seq: int, hash_: str) -> str:
    """The head's MAC over (seq, hash): whoever holds only the database cannot set the head to a new value."""
    return _mac(key, HEAD_TAG + f"{int(seq)}:{hash_}".encode())


@dataclass(frozen=True)
class Seal:
    """封存点: one signed checkpoint of the chain, chained to the previous one by ``prev`` (its MAC)."""

    n: int
    seq: int
    hash: str
    at: str
    prev: str
    mac: str = ""

    def body(self) -> dict:
        return {name: getattr(self, name) for name in SEAL_FIELDS}

    def signed(self, key: bytes) -> Seal:
        return Seal(**self.body(), mac=seal_mac(key, self.body()))

    def line(self) -> str:
        return json.dumps(self.body() | {"mac": self.mac}, ensure_ascii=False, separators=(",", ":"))


def seal_mac(key: bytes, body: Mapping[str, Any]) -> str:
    data = {name: body.get(name) for name in SEAL_FIELDS}
    return _mac(key, SEAL_TAG + json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


class SealFileError(ValueError):
    """A seal file that does not check: a line edited, removed from the middle, reordered or forged."""

    def __init__(self, number: int, reason: str):
        super().__init__(reason)
        self.number = number


def parse_seal(line: str, number: int) -> Seal:
    try:
        data = json.loads(line)
        seal = Seal(
            n=int(data["n"]),
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            at=str(data["at"]),
            prev=str(data["prev"]),
            mac=str(data["mac"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SealFileError(number, f"封存文件第 {number} 条无法解析，文件被改动或损坏") from exc
    return seal


def check_seals(key: bytes, lines: Iterable[str]) -> list[Seal]:
    """Parse and check a seal file: every MAC, the link to the previous seal, numbering and forward order."""
    seals: list[Seal] = []
    prev = GENESIS
    for number, line in enumerate((ln for ln in lines if ln.strip()), 1):
        seal = parse_seal(line, number)
        if seal_mac(key, seal.body()) != seal.mac:
            raise SealFileError(number, f"封存文件第 {number} 条的校验码不符，封存文件被改动")
        if seal.n != number or seal.prev != prev:
            raise SealFileError(
                number, f"封存文件第 {number} 条与前一条接不上，封存点被删除、插入或调换了顺序"
            )
        if seals and seal.seq < seals[-1].seq:
            raise SealFileError(number, f"封存文件第 {number} 条的序号小于前一条，封存点顺序错乱")
        seals.append(seal)
        prev = seal.mac
    return seals


@dataclass(frozen=True)
class Break:
    """The first row at which the chain stops being intact."""

    seq: int
    reason: str


MISSING = "missing"  # the ``head`` argument of verify_rows when the head row does not exist


def verify_rows(
    key: bytes,
    rows: Iterable[Mapping[str, Any]],
    head: tuple | str | None = None,
    *,
    seals: Sequence[Seal] = (),
    start: tuple[int, str] = (0, GENESIS),
    flag_repairs: bool = True,
    when: Callable[[Seal], str] = lambda seal: seal.at,
) -> Break | None:
    """Walk rows in seq order; return the first break, or None when the chain is intact.

    ``head`` is None (not checked), MISSING (the head row is gone), ``(seq, hash)`` or ``(seq, hash, mac)``
    (the MAC is checked when given). ``seals`` are checkpoints written earlier: the row at each sealed seq must
    still carry the sealed hash, and the rows must reach the last sealed seq. ``start`` begins the walk after a
    known (seq, hash) instead of at the genesis. With ``flag_repairs`` a row the log appended on finding the
    head missing or forged counts as a break (the rows before it may have been cut off). ``when`` shows a seal's
    time in the reasons.
    """
    sealed: dict[int, list[Seal]] = {}
    for seal in seals:
        sealed.setdefault(seal.seq, []).append(seal)
    expected_seq, expected_prev = start[0] + 1, start[1]
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                return Break(expected_seq, f"第 {expected_seq} 行缺失（下一行序号为 {seq}），记录被删除")
            return Break(seq, f"第 {seq} 行序号重复或顺序错乱，疑似插入")
        if row["prev_hash"] != expected_prev:
            return Break(seq, f"第 {seq} 行的前序哈希与第 {seq - 1} 行不符，记录被插入、删除、改动或调换顺序")
        if row_hash(key, row) != row["hash"]:
            return Break(seq, f"第 {seq} 行内容与其哈希不符，记录被改动")
        for seal in sealed.get(seq, ()):
            if seal.hash != row["hash"]:
                return Break(
                    seq,
                    f"第 {seq} 行与 {when(seal)} 的封存点（第 {seal.n} 个）不符：封存后该行被替换"
                    "（例如尾部被截断后又追加了记录，或整库被替换）",
                )
        if flag_repairs and row.get("action") == CHAIN_BREAK:
            reason = (row.get("detail") or {}).get("reason", "链头缺失或被改写")
            return Break(seq, f"第 {seq} 行：追加记录时发现{reason}，此前的记录可能被截断")
        expected_seq, expected_prev = seq + 1, row["hash"]
    last_seq = expected_seq - 1
    problems: list[Break] = []
    if seals:
        latest = max(seals, key=lambda s: (s.seq, s.n))
        if latest.seq > last_seq:
            have = f"库中只有 {last_seq} 行" if last_seq else "库中已没有任何审计记录"
            problems.append(
                Break(last_seq + 1, f"封存点（{when(latest)}）记录到第 {latest.seq} 行，{have}：尾部被截断")
            )
    if head == MISSING:
        problems.append(
            Break(last_seq + 1, f"链头缺失（库中有 {last_seq} 行记录）：链头被删除，尾部记录可能随之被删")
        )
    elif head is not None:
        head_seq, head_hash = head[0], head[1]
        if len(head) > 2 and head_mac(key, head_seq, head_hash) != head[2]:
            problems.append(
                Break(
                    min(head_seq, last_seq) + 1,
                    f"链头（第 {head_seq} 行）的校验码不符：链头被改写或回退，尾部记录可能被删除",
                )
            )
        elif head_seq > last_seq:
            have = f"第 {last_seq + 1} 行起的记录缺失" if last_seq else "库中没有任何审计记录"
            problems.append(Break(last_seq + 1, f"链头记录到第 {head_seq} 行，但{have}，尾部被删除"))
        elif head_seq < last_seq:
            problems.append(Break(head_seq + 1, f"第 {head_seq + 1} 行不在链头登记范围内，疑似追加插入"))
        elif head_seq and head_hash != expected_prev:
            problems.append(Break(head_seq, f"第 {head_seq} 行哈希与链头登记不符"))
    if problems:
        return Break(min(p.seq for p in problems), "；".join(p.reason for p in problems))
    return None
