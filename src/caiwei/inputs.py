"""Checks for text that comes from outside (API bodies, imported cells): what no field should hold.

Control characters (NUL breaks PostgreSQL, ESC drives terminals), unpaired surrogates (cannot be stored as UTF-8),
bidirectional overrides (make "发票‮exe.pdf" read as a PDF) and, in one-line fields, zero-width characters and line
breaks. Emoji and combining marks are text and pass.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` may not be stored (Chinese), or None."""
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "含有无法识别的字符（不成对的代理码位）"
        if category == "Cc" and not (multiline and ch in "\t\n\r"):
            if ch in "\r\n" and not multiline:
                return "不能换行"
            return f"含有不可见的控制字符（U+{ord(ch):04X}）"
        if ch in BIDI:
            return f"含有改变文字方向的控制字符（U+{ord(ch):04X}）"
        if ch in ZERO_WIDTH and not (multiline and ch == "\u200d"):
            return f"含有零宽字符（U+{ord(ch):04X}）"
    return None


def _line(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _text(value: str) -> str:
    problem = text_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("不能为空")
    return value


def Line(max_length: int, required: bool = False):  # noqa: N802 (a type, used as one)
    """A one-line text field of at most ``max_length`` characters (``required``: not blank)."""
    checks = [AfterValidator(_line)] + ([AfterValidator(_not_blank)] if required else [])
    return Annotated[str, Field(max_length=max_length), *checks]


def Text(max_length: int = 10000, required: bool = False):  # noqa: N802
    """A multi-line text field (line breaks and tabs allowed)."""
    checks = [AfterValidator(_text)] + ([AfterValidator(_not_blank)] if required else [])
    return Annotated[str, Field(max_length=max_length), *checks]
