"""脱敏: sample rows leave the target with ID numbers, bank accounts and phone numbers masked.

By column name (accounts, ID numbers, phones) and, whatever the column, by the shape of the value (an 18-character
resident ID, an 11-digit mobile number). Keys are stored as they are: rules key on row identifiers, not on these.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")
ID_COLUMNS = re.compile(r"(iden|id_?card|id_?no$|cert_?id)", re.I)
ACCOUNT_COLUMNS = re.compile(r"(acct_?no|account_?no|card_?no|(acct|account)$)", re.I)
PHONE_COLUMNS = re.compile(r"(phone|mobile|tel)", re.I)


def _keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    if ID_COLUMNS.search(column) or ID_NUMBER.match(text):
        return _keep(text, 6, 2)
    if PHONE_COLUMNS.search(column) or MOBILE.match(text):
        return _keep(text, 3, 4)
    if ACCOUNT_COLUMNS.search(column):
        return _keep(text, 4, 4)
    return value


def plain(value: Any) -> Any:
    """A JSON-ready value: money as a string with its decimals, dates in ISO form."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def mask_row(columns: list[str], row: tuple) -> dict[str, Any]:
    return {c: plain(mask_value(c, v)) for c, v in zip(columns, row, strict=True)}
