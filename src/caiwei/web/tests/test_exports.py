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


def test_workbook_cells_that_look_like_formulas_stay_text():
    """openpyxl would store ``=...`` as a formula: after escaping, the saved file holds text with Excel's quote
    prefix, and nothing else changes."""
    import io

    from openpyxl import Workbook, load_workbook

    from caiwei.web.exports import escape_workbook

    book = Workbook()
    book.active.append(['=HYPERLINK("http://x","y")', "@SUM(A1)", "普通文字", -12.5, "-1"])
    escape_workbook(book)
    out = io.BytesIO()
    book.save(out)
    cells = list(load_workbook(io.BytesIO(out.getvalue())).active.iter_rows())[0]
    assert [c.data_type for c in cells] == ["s", "s", "s", "n", "s"]
    assert cells[0].value == '=HYPERLINK("http://x","y")' and cells[0].quotePrefix
    assert not cells[2].quotePrefix and cells[3].value == -12.5
