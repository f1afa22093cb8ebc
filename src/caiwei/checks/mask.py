"""脱敏: what leaves a target — sample rows, the keys of failing rows, per-unit codes — leaves with secrets, ID
numbers, bank accounts and phone numbers masked.

A column is classified by its name in the rule and by every name the target's mapping gives it (a logical column
mapped onto ``session_key`` is a secret), and, whatever the column, by the shape of the value (an 18-character
resident ID, an 11-digit mobile number). Keys are data like any other: a key value that classifies is stored, shown,
compared and exported masked, followed by a keyed fingerprint (HMAC with the platform's secret key) so that two
runs can still be compared row by row without the value itself being kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")
SECRET_COLUMNS = re.compile(
    r"(passw|pwd|secret|token|session|salt|credential|cookie|private_?key|api_?key|auth_?key|otp_?)", re.I
)
ID_COLUMNS = re.compile(r"(iden|id_?card|id_?no$|cert_?id)", re.I)
ACCOUNT_COLUMNS = re.compile(r"(acct_?no|account_?no|card_?no|(acct|account)$)", re.I)
PHONE_COLUMNS = re.compile(r"(phone|mobile|tel)", re.I)
FINGERPRINT = re.compile(r"#[0-9a-f]{10}$")

Aliases = dict[str, tuple[str, ...]]


def aliases_of(mapping) -> Aliases:
    """Logical column → the target's names for it, from a mapping (any table)."""
    found: dict[str, set[str]] = {}
    for columns in (getattr(mapping, "columns", None) or {}).values():
        for logical, physical in columns.items():
            found.setdefault(logical.lower(), set()).add(physical.lower())
    return {k: tuple(sorted(v)) for k, v in found.items()}


def classify(names: Iterable[str], value: Any = None) -> str | None:
    """secret, id, phone, account or None: by any of the column's names, then by the shape of the value."""
    names = [n for n in names if n]
    if any(SECRET_COLUMNS.search(n) for n in names):
        return "secret"
    text = None if value is None else str(value)
    if any(ID_COLUMNS.search(n) for n in names) or (text is not None and ID_NUMBER.match(text)):
        return "id"
    if any(PHONE_COLUMNS.search(n) for n in names) or (text is not None and MOBILE.match(text)):
        return "phone"
    if any(ACCOUNT_COLUMNS.search(n) for n in names):
        return "account"
    return None


def _keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def _names(column: str, aliases: Aliases | None) -> list[str]:
    return [column, *((aliases or {}).get(column.lower(), ()))]


def mask_value(column: str, value: Any, aliases: Aliases | None = None) -> Any:
    if value is None:
        return None
    kind = classify(_names(column, aliases), plain(value))
    text = str(plain(value))
    if kind == "secret":
        return "*" * min(max(len(text), 6), 12)
    if kind == "id":
        return _keep(text, 6, 2)
    if kind == "phone":
        return _keep(text, 3, 4)
    if kind == "account":
        return _keep(text, 4, 4)
    return value


def fingerprint(value: Any) -> str:
    """A keyed digest of a value: equal values give equal fingerprints; the value cannot be read back."""
    from django.utils.crypto import salted_hmac

    return salted_hmac("caiwei.checks.mask.key", str(plain(value)), algorithm="sha256").hexdigest()[:10]


def mask_key(column: str, value: Any, aliases: Aliases | None = None) -> Any:
    """A key value as it may be kept: unchanged when nothing about it is sensitive, else masked + fingerprint."""
    if value is None:
        return None
    masked = mask_value(column, value, aliases)
    if masked is value:
        return plain(value)
    return f"{masked}#{fingerprint(value)}"


def is_masked_key(value: Any) -> bool:
    return isinstance(value, str) and "*" in value and bool(FINGERPRINT.search(value))


def plain(value: Any) -> Any:
    """A JSON-ready value: money as a string with its decimals, dates in ISO form."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def mask_row(columns: list[str], row: tuple, aliases: Aliases | None = None) -> dict[str, Any]:
    return {c: plain(mask_value(c, v, aliases)) for c, v in zip(columns, row, strict=True)}
