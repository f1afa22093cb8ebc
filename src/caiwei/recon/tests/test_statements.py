"""Statements of a run 对账单与余额调节表: the balance identity on a hand-built reconciliation whose every voucher and
line is written down with its class (tests/scenario.py), per month and per day; a difference no item explains is
said to be one; the files open in openpyxl and python-docx and carry the figures; the sandbox's statements balance
for every bank and month."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from caiwei.recon import statements
from caiwei.recon.models import ReconBreak
from caiwei.recon.statements import Period, StatementError, build, parse_period

from . import scenario


@pytest.fixture
def run(regions):
    return scenario.execute(regions["152500000"])


def sides(s: statements.Statement) -> dict:
    return {side: {a.code: a.amount for a in s.side(side)} for side in ("bank", "book")}


def test_month_balances_and_every_item_is_the_class_of_its_definition(run):
    s = build(run, scenario.BANK, parse_period("month", "2026-01", run))
    want = scenario.expected(scenario.BANK, date(2026, 1, 1), date(2026, 1, 31))
    assert s.bank_paid == want["bank_paid"] == Decimal("1600.00")
    assert s.book_paid == want["book_paid"] == Decimal("2390.00")
    assert sides(s) == {"bank": want["bank"], "book": want["book"]}
    assert s.adjusted_bank == s.adjusted_book == Decimal("2560.00")
    assert s.balanced and "调节后余额相等" in s.conclusion
    # the statement: the days, what matched, the breaks with the state of the stored break
    assert s.totals["matched_count"] == 4  # V1, V2, V7 (退票已退款), V10 (split)
    assert s.totals["transit_count"] == 1 and s.totals["transit_amount"] == Decimal("500.00")
    assert {b.kind for b in s.breaks} == scenario.BREAK_CLASSES
    assert all(b.state == "未解决" and b.break_id for b in s.breaks)
    assert s.opening_bank == s.opening_book == Decimal(0)
    assert s.closing_bank == Decimal("1600.00")


def test_breaks_know_their_bank_and_day(run):
    by_kind = {b.kind: b for b in ReconBreak.objects.filter(last_run=run)}
    assert by_kind["amount"].bank_code == scenario.BANK and by_kind["amount"].day == date(2026, 1, 6)
    assert by_kind["bank_only"].day == date(2026, 1, 7)  # no voucher: the line's day
    assert by_kind["status"].day == date(2026, 1, 9)


@pytest.mark.parametrize("day", ["2026-01-02", "2026-01-06", "2026-01-07", "2026-01-13", "2026-01-30"])
def test_each_day_balances(run, day):
    s = build(run, scenario.BANK, parse_period("day", day, run))
    when = date.fromisoformat(day)
    want = scenario.expected(scenario.BANK, when, when)
    assert (s.bank_paid, s.book_paid) == (want["bank_paid"], want["book_paid"])
    assert sides(s) == {"bank": want["bank"], "book": want["book"]}
    assert s.balanced


def test_day_opening_and_closing_accumulate(run):
    s = build(run, scenario.BANK, parse_period("day", "2026-01-06", run))
    assert s.opening_bank == Decimal("150.00")  # 2 Jan 50 + 5 Jan 100
    assert s.opening_book == Decimal("100.00")  # 5 Jan V1 (V0 is of December, before the run's period)
    assert s.closing_bank == Decimal("440.00") and s.closing_book == Decimal("400.00")


def test_other_bank_is_apart(run):
    s = build(run, scenario.OTHER, parse_period("month", "2026-01", run))
    assert s.bank_paid == s.book_paid == Decimal("10.00")
    assert not s.side("bank") and not s.side("book") and s.balanced and s.breaks == []


def test_a_difference_no_item_explains_is_said(run):
    """Take the 仅银行有 break out of the stored items, as if it had been lost: the sides differ by its amount."""
    totals = json.loads(json.dumps(run.totals))
    items = totals["banks"][scenario.BANK]["items"]
    totals["banks"][scenario.BANK]["items"] = [i for i in items if i["kind"] != "bank_only"]
    run.totals = totals
    s = build(run, scenario.BANK, parse_period("month", "2026-01", run))
    assert not s.balanced and s.difference == Decimal("80.00")
    assert "调节后余额不相等" in s.conclusion and "80.00" in s.conclusion


def test_a_line_the_engine_leaves_out_is_reported(regions):
    """A bank line without 支付凭证号 and serial: neither matched nor a break — the sides differ and the notes say
    why."""
    loose = [
        *scenario.LOOSE,
        (scenario.BANK, scenario.Line(date(2026, 1, 20), "33.00", cert=None, serial="")),
    ]
    run = scenario.execute(regions["152500000"], loose=loose)
    s = build(run, scenario.BANK, parse_period("month", "2026-01", run))
    if s.balanced:  # the engine classified the line after all (then it is an item)
        assert any(b.bank_amount == Decimal("33.00") for b in s.breaks)
    else:
        assert s.difference == Decimal("33.00")  # the bank side has 33.00 no item explains
        assert any("未列为差异" in n for n in s.notes)


def test_periods_outside_the_run_or_unknown_banks_are_refused(run):
    with pytest.raises(StatementError, match="不在第"):
        parse_period("month", "2026-02", run)
    with pytest.raises(StatementError, match="格式"):
        parse_period("day", "2026-1-5x", run)
    with pytest.raises(StatementError, match="没有银行"):
        build(run, "B999", parse_period("month", "2026-01", run))
    run.totals = {}
    with pytest.raises(StatementError, match="重新对账"):
        build(run, scenario.BANK, parse_period("month", "2026-01", run))


def test_a_month_cut_by_the_run_says_so(regions):
    run = scenario.execute(regions["152500000"], end=date(2026, 1, 15))
    s = build(run, scenario.BANK, Period("month", date(2026, 1, 1), date(2026, 1, 31)))
    assert s.cut and "1月15日" in s.notes[0]
    want = scenario.expected(scenario.BANK, date(2026, 1, 1), date(2026, 1, 15))
    assert (s.bank_paid, s.book_paid) == (want["bank_paid"], want["book_paid"])


# --- the files ----------------------------------------------------------------------------------------------------


def cells(book) -> list:
    return [
        c
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for c in row
        if c is not None
    ]


def test_excel_carries_both_tables_and_the_figures(run):
    from openpyxl import load_workbook

    s = build(run, scenario.BANK, parse_period("month", "2026-01", run))
    name, content_type, data = statements.render(s, "xlsx")
    assert name.endswith(".xlsx") and "spreadsheetml" in content_type
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["对账单", "余额调节表"]
    values = cells(book)
    text = "\n".join(str(v) for v in values)
    for figure in (Decimal("1600.00"), Decimal("2390.00"), Decimal("2560.00"), Decimal("500.00")):
        assert any(isinstance(v, (int, float)) and Decimal(str(v)) == figure for v in values), figure
    for words in (
        "中国工商银行（演练）",
        "2026年1月",
        "锡林郭勒",
        "生成时间",
        "调节后支付合计",
        "在途凭证",
        "仅银行有",
    ):
        assert words in text, words
    assert "调节后余额相等" in text
    sheet = book["余额调节表"]
    amounts = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, (int, float))]
    assert amounts and all(c.number_format == "#,##0.00" for c in amounts)


def test_word_carries_both_tables_and_the_figures(run):
    from docx import Document

    s = build(run, scenario.BANK, parse_period("month", "2026-01", run))
    name, content_type, data = statements.render(s, "docx")
    assert name.endswith(".docx") and "wordprocessingml" in content_type
    doc = Document(io.BytesIO(data))
    text = "\n".join(p.text for p in doc.paragraphs)
    table_text = "\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells)
    assert "对账单（2026年1月）" in text and "余额调节表（2026年1月）" in text
    assert "锡林郭勒" in text and "生成时间" in text and "调节后余额相等" in text
    for figure in ("1,600.00", "2,390.00", "2,560.00", "500.00", "80.00"):
        assert figure in table_text, figure
    assert "调节后支付合计" in table_text and "仅银行有" in table_text
    assert "银行签认" in text and "财政签认" in text


def test_text_starting_like_a_formula_stays_text(regions):
    from openpyxl import load_workbook

    loose = [(scenario.BANK, scenario.Line(date(2026, 1, 7), "80.00", cert="ZZ404", serial="=HYPERLINK(1)"))]
    run = scenario.execute(regions["152500000"], loose=loose)
    _, _, data = statements.render(build(run, scenario.BANK, parse_period("month", "2026-01", run)), "xlsx")
    sheet = load_workbook(io.BytesIO(data))["对账单"]
    cell = next(c for row in sheet.iter_rows() for c in row if c.value == "=HYPERLINK(1)")
    assert cell.data_type == "s"


def test_command_line_writes_the_file(run, tmp_path):
    from openpyxl import load_workbook

    target = tmp_path / "jan.xlsx"
    out = StringIO()
    call_command(
        "recon",
        "statement",
        "--run",
        str(run.pk),
        "--bank",
        scenario.BANK,
        "--period",
        "month",
        "--date",
        "2026-01",
        "-o",
        str(target),
        stdout=out,
    )
    assert "调节后余额相等" in out.getvalue()
    assert "2026年1月" in "".join(str(c) for c in cells(load_workbook(target)))
    word = tmp_path / "day.docx"
    call_command(
        "recon",
        "statement",
        "--run",
        str(run.pk),
        "--bank",
        scenario.BANK,
        "--period",
        "day",
        "--date",
        "2026-01-30",
        "--format",
        "docx",
        "-o",
        str(word),
        stdout=StringIO(),
    )
    assert word.read_bytes()[:2] == b"PK"


# --- the sandbox: every bank and month balances -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from caiwei.sandbox.generator import GenerateSpec, parse_faults
    from caiwei.sandbox.service import run_generate

    tmp = tmp_path_factory.mktemp("recon-stmt")
    url = f"sqlite:///{tmp / 'sandbox.sqlite3'}"
    faults = "voucher_missing_at_bank=1,bank_line_no_voucher=1,bank_amount_mismatch=1,voucher_no_receipt=1"
    run_generate(url, GenerateSpec(payments=800, seed=5, faults=parse_faults(faults)), bank_dir=tmp / "files")
    return url, tmp / "files"


def test_sandbox_statements_balance_for_every_bank_and_month(sandbox, regions):
    from caiwei.recon.models import ReconRun
    from caiwei.recon.services import run_reconciliation
    from caiwei.recon.sources import sandbox_files

    url, folder = sandbox
    run = ReconRun.objects.create(
        region=regions["152500000"],
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        as_of=date(2026, 12, 31),
        tolerance={"date_window": 1, "transit_days": 10},
    )
    run_reconciliation(
        run,
        book_url=url,
        bank_files=sandbox_files(folder, url),
        pboc_file=folder / "pboc" / "clearing-2026.xml",
    )
    run.refresh_from_db()
    banks = statements.banks_of(run)
    assert len(banks) >= 2
    unbalanced, kinds = [], set()
    for bank in banks:
        for month in statements.months_of(run):
            s = build(run, bank, parse_period("month", month, run))
            kinds |= {b.kind for b in s.breaks}
            if not s.balanced:
                unbalanced.append((bank, month, s.difference))
        year = build(run, bank, Period("month", date(2026, 1, 1), date(2026, 12, 31)))
        assert year.balanced, (bank, year.difference)
    assert unbalanced == []
    assert {"amount", "bank_only", "book_only"} <= kinds
    # every break of the run knows its bank and day
    assert not ReconBreak.objects.filter(last_run=run, day__isnull=True).exclude(kind__startswith="clearing")
