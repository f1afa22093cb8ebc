"""A small hand-built reconciliation for the statement and sign-off tests: each voucher and bank line is written
down with the class it must end in, and the expected figures of the 余额调节表 are derived from these definitions,
not from the code under test.

January 2026 (1 January a holiday), window T+1, in transit up to 3 business days, as of 3 February 2026.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import duckdb

from caiwei.recon.engine import Tolerance, create_inputs, load_business_days, reconcile
from caiwei.recon.models import ReconRun
from caiwei.recon.services import fingerprint, keep_breaks
from caiwei.recon.statements import compute_totals

BANK, OTHER = "B102", "B103"
AS_OF = date(2026, 2, 3)
START, END = date(2026, 1, 1), date(2026, 1, 31)


@dataclass
class Line:
    day: date
    amount: str
    status: str | None = None
    cert: str | None = None  # 支付凭证号 on the line (default: the voucher's)
    serial: str = ""


@dataclass
class Voucher:
    no: str
    day: date
    amount: str
    lines: list[Line] = field(default_factory=list)
    refunded: bool = False
    bank: str = BANK
    # the class the engine must give it, and the side of the 调节表 its difference goes to (None: no difference)
    expect: str = "matched"


D = date
VOUCHERS = [
    Voucher("V0", D(2025, 12, 31), "50.00", [Line(D(2026, 1, 2), "50.00")], expect="lag_in"),
    Voucher("V1", D(2026, 1, 5), "100.00", [Line(D(2026, 1, 5), "100.00")]),
    Voucher("V2", D(2026, 1, 30), "200.00", [Line(D(2026, 2, 2), "200.00")], expect="lag_out"),
    Voucher("V3", D(2026, 1, 6), "300.00", [Line(D(2026, 1, 6), "290.00")], expect="amount"),
    Voucher("V5", D(2026, 1, 8), "120.00", expect="book_only"),
    Voucher("V6", D(2026, 1, 9), "60.00", [Line(D(2026, 1, 9), "60.00", "退票")], expect="status"),
    Voucher(
        "V7",
        D(2026, 1, 12),
        "70.00",
        [Line(D(2026, 1, 12), "70.00", "退票")],
        refunded=True,
        expect="returned",
    ),
    Voucher(
        "V8",
        D(2026, 1, 13),
        "40.00",
        [Line(D(2026, 1, 13), "40.00"), Line(D(2026, 1, 13), "40.00")],
        expect="bank_duplicate",
    ),
    Voucher("V9", D(2026, 1, 30), "500.00", expect="transit"),
    Voucher(
        "V10", D(2026, 1, 14), "1000.00", [Line(D(2026, 1, 14), "600.00"), Line(D(2026, 1, 14), "400.00")]
    ),
    Voucher("W1", D(2026, 1, 5), "10.00", [Line(D(2026, 1, 5), "10.00")], bank=OTHER),
]
# A bank line naming no voucher (仅银行有).
LOOSE = [(BANK, Line(D(2026, 1, 7), "80.00", cert="ZZ404", serial="S404"))]
BREAK_CLASSES = {"amount", "book_only", "status", "bank_duplicate", "bank_only"}


def business_days() -> list[date]:
    day, out = D(2025, 11, 1), []
    while day <= D(2026, 3, 31):
        if day.weekday() < 5 and day != D(2026, 1, 1):
            out.append(day)
        day += timedelta(days=1)
    return out


def load(con: duckdb.DuckDBPyConnection, vouchers=VOUCHERS, loose=LOOSE) -> None:
    create_inputs(con)
    load_business_days(con, business_days())
    line_id = 0
    for v in vouchers:
        con.execute(
            "INSERT INTO book VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            [v.no, v.bank, f"SN-{v.no}", v.day, Decimal(v.amount), f"P-{v.no}", v.refunded],
        )
        for n, line in enumerate(v.lines):
            line_id += 1
            con.execute(
                "INSERT INTO bank VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'bank.csv', ?)",
                [
                    line_id,
                    v.bank,
                    line.cert or v.no,
                    line.serial or f"SN-{v.no}-{n}",
                    line.day,
                    Decimal(line.amount),
                    f"P-{v.no}",
                    line.status,
                    line_id + 1,
                ],
            )
    for bank, line in loose:
        line_id += 1
        con.execute(
            "INSERT INTO bank VALUES (?, ?, ?, ?, ?, ?, 'P-LOOSE', ?, NULL, 'bank.csv', ?)",
            [line_id, bank, line.cert, line.serial, line.day, Decimal(line.amount), line.status, line_id + 1],
        )


def execute(region, start=START, end=END, vouchers=VOUCHERS, loose=LOOSE, database=None) -> ReconRun:
    """A run of the scenario kept like ``run_reconciliation`` keeps one (totals, breaks, audit)."""
    run = ReconRun.objects.create(
        region=region,
        database=database,
        period_start=start,
        period_end=end,
        as_of=AS_OF,
        tolerance={"date_window": 1, "transit_days": 3},
    )
    con = duckdb.connect()
    load(con, vouchers, loose)
    result = reconcile(con, Tolerance(date_window=1, transit_days=3), AS_OF)
    found = []
    for b in result.breaks:
        details = [
            {"file": f, "line": n, "serial": s or "", "amount": f"{a:.2f}"}
            for f, n, s, a in con.execute(
                "SELECT source, line, agent_business_no, amount FROM bank "
                "WHERE line_id IN (SELECT unnest(?::BIGINT[])) ORDER BY line_id",
                [b["lines"]],
            ).fetchall()
        ]
        found.append(
            {
                **b,
                "line_details": details,
                "fingerprint": fingerprint(b["kind"], b["vouchers"], details, b["note"]),
            }
        )
    run.totals = compute_totals(con, found, start, end)
    con.close()
    run.sources = {"files": 1, "lines": 0, "amount": "0.00", "refused": [], "vouchers": len(vouchers)}
    keep_breaks(run, found)
    run.refresh_from_db()
    return run


def expected(bank: str, start: date, end: date) -> dict:
    """The 调节表 of ``bank`` for [start, end] from the definitions above: the two totals, and per class the
    amount on the bank side (我方已付、银行未付) and on the book side (银行已付、我方未付)."""

    def inside(day: date) -> bool:
        return start <= day <= end

    bank_paid = book_paid = Decimal(0)
    sides = {"bank": {}, "book": {}}
    for v in VOUCHERS:
        if v.bank != bank:
            continue
        k = Decimal(v.amount) if inside(v.day) else Decimal(0)
        b = sum(
            (Decimal(x.amount) for x in v.lines if inside(x.day) and x.status is None),
            Decimal(0),
        )
        book_paid += k
        bank_paid += b
        if k != b:
            side = "bank" if k > b else "book"
            sides[side][v.expect] = sides[side].get(v.expect, Decimal(0)) + abs(k - b)
    for line_bank, line in LOOSE:
        if line_bank == bank and inside(line.day) and line.status is None:
            bank_paid += Decimal(line.amount)
            sides["book"]["bank_only"] = sides["book"].get("bank_only", Decimal(0)) + Decimal(line.amount)
    return {"bank_paid": bank_paid, "book_paid": book_paid, **sides}
