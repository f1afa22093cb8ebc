"""Spreadsheet exports (CSV, Excel): what a user typed must never reach a spreadsheet as a formula.

Excel, WPS and LibreOffice evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and one starting with
a tab or carriage return after the program strips it), so a ticket title or an audit field such as
``=HYPERLINK("http://…")`` would run when the auditor opens the file (CSV/formula injection). Every text cell of
an export goes through ``safe_cell``, which prefixes such text with a single quote: the spreadsheet shows the
text as typed and does not evaluate it. Numbers, dates and None pass unchanged.
"""

from __future__ import annotations

from typing import Any

# The ASCII triggers, and as a precaution their full-width forms, which Chinese input methods type.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that cannot be read as a formula: text starting with a trigger gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values) -> list:
    return [safe_cell(value) for value in values]


def escape_workbook(book) -> None:
    """An openpyxl workbook's text cells that would be formulas become plain text: openpyxl stores a string
    starting with ``=`` as a formula, so the cell is set back to a string and marked with Excel's quote prefix
    (shown as typed, never evaluated, without a visible quote)."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS):
                    cell.data_type = "s"
                    cell.quotePrefix = True
