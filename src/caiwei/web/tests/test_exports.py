"""safe_cell: user text never reaches a spreadsheet as a formula."""

from datetime import date
from decimal import Decimal

import pytest

from caiwei.web.exports import safe_cell, safe_row


@pytest.mark.parametrize(
    "text",
    ["=1+1", '=HYPERLINK("http://x")', "+86 138", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "＝1+1", "＠x"],
)
def test_formula_starts_are_quoted(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["正常文本", "a=1", " =1", "", "'=already", '{"a": 1}', "1+1"])
def test_other_text_is_unchanged(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", [None, 0, -5, -1.5, Decimal("-3.20"), date(2026, 1, 1), True])
def test_non_text_is_unchanged(value):
    assert safe_cell(value) is value


def test_safe_row():
    assert safe_row(["=x", -1, "y"]) == ["'=x", -1, "y"]
