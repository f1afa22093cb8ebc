"""The hash chain 审计链: each row's hash is HMAC-SM3 over the previous hash and the row's canonical JSON.

No Django import: the chain rules are tested and reused (verify, export) on plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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


def canonical_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(row: Mapping[str, Any]) -> bytes:
    data = {name: row.get(name) for name in HASHED_FIELDS}
    if isinstance(data["at"], datetime):
        data["at"] = canonical_instant(data["at"])
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def row_hash(key: bytes, row: Mapping[str, Any]) -> str:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(canonical_bytes(row))
    return mac.finalize().hex()


@dataclass(frozen=True)
class Break:
    """The first row at which the chain stops being intact."""

    seq: int
    reason: str


def verify_rows(
    key: bytes, rows: Iterable[Mapping[str, Any]], head: tuple[int, str] | None = None
) -> Break | None:
    """Walk rows in seq order; return the first break, or None when the chain is intact up to ``head``."""
    expected_seq, expected_prev = 1, GENESIS
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                return Break(expected_seq, f"第 {expected_seq} 行缺失（下一行序号为 {seq}），记录被删除")
            return Break(seq, f"第 {seq} 行序号重复或顺序错乱，疑似插入")
        if row["prev_hash"] != expected_prev:
            return Break(seq, f"第 {seq} 行的前序哈希与第 {seq - 1} 行不符，记录被插入、删除或改动")
        if row_hash(key, row) != row["hash"]:
            return Break(seq, f"第 {seq} 行内容与其哈希不符，记录被改动")
        expected_seq, expected_prev = seq + 1, row["hash"]
    last_seq = expected_seq - 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq > last_seq:
            return Break(
                last_seq + 1, f"链头记录到第 {head_seq} 行，但第 {last_seq + 1} 行起的记录缺失，尾部被删除"
            )
        if head_seq < last_seq:
            return Break(head_seq + 1, f"第 {head_seq + 1} 行不在链头登记范围内，疑似追加插入")
        if head_seq and head_hash != expected_prev:
            return Break(head_seq, f"第 {head_seq} 行哈希与链头登记不符")
    return None
