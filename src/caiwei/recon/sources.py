"""Sources of a reconciliation 对账数据来源, each loaded into DuckDB in the engine's normalised shape without holding a
side in Python: the agent banks' files (through their format definitions, normalised to UTF-8 CSV all or nothing,
then read by DuckDB), the central bank's clearing file, and the finance database's vouchers (streamed from the
registered target in batches to a CSV file DuckDB reads)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlalchemy as sa

from . import formats
from .engine import BOOK_COLUMNS

# The finance database's vouchers as the book side (logical tables of DOMAIN.md). A refund 退款 marks the voucher.
BOOK_SQL = """
SELECT v.pay_cert_no, v.bank_code, v.agent_business_no, v.vou_date, v.pay_amt, p.payee_acct_no,
       CASE WHEN EXISTS (SELECT 1 FROM pay_back_info k WHERE k.pay_cert_no = v.pay_cert_no) THEN 1 ELSE 0 END,
       v.act_lqd_date, v.xpay_amt
FROM pay_voucher_bill v JOIN pay_voucher p ON p.pay_app_id = v.pay_app_id
WHERE v.fiscal_year = :year
"""
BATCH = 50_000
# The sandbox's banks name their layout in ele_bank.file_format; the shipped definition of each.
SANDBOX_LAYOUTS = {"csv_gbk": "csv-gbk", "xlsx": "excel", "fixed_width": "fixed-gbk", "xml_gbk": "xml-gbk"}


@dataclass
class Loaded:
    files: int = 0
    lines: int = 0
    amount: Decimal = Decimal(0)
    refused: list[dict] = field(default_factory=list)  # FormatError.as_dict() of each refused file


def _insert_csv(con: duckdb.DuckDBPyConnection, table: str, path: Path, columns: Iterable[str]) -> None:
    types = {c.split()[0]: c.split(maxsplit=1)[1] for c in columns}
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in types.items())
    con.execute(
        f"INSERT INTO {table} SELECT * FROM read_csv(?, header = true, columns = {{{spec}}}, "  # noqa: S608
        "nullstr = '', quote = '\"', escape = '\"', auto_detect = false)",
        [str(path)],
    )


def load_bank_files(
    con: duckdb.DuckDBPyConnection, files: Iterable[tuple[Path, formats.Definition, str]], work: Path
) -> Loaded:
    """Each (file, definition, bank code): normalised whole or refused whole; the accepted ones appended to ``bank``
    with line ids continuing after those already there."""
    result = Loaded()
    start = con.execute("SELECT coalesce(max(line_id), 0) FROM bank").fetchone()[0]
    for path, definition, bank_code in files:
        target = work / f"bank-{result.files + len(result.refused):05d}.csv"
        try:
            done = formats.normalise(
                definition, path, target, extra={"bank_code": bank_code, "source": path.name}
            )
        except formats.FormatError as exc:
            result.refused.append(exc.as_dict())
            continue
        con.execute(
            f"""
            INSERT INTO bank
            SELECT {int(start)} + row_number() OVER (), bank_code, pay_cert_no, agent_business_no, pay_date, amount,
                   payee_acct_no, nullif(status, ''), nullif(return_reason, ''), source, line
            FROM read_csv(?, header = true, auto_detect = false, nullstr = '', columns = {{
                'pay_date': 'DATE', 'pay_cert_no': 'VARCHAR', 'agent_business_no': 'VARCHAR',
                'payer_acct_no': 'VARCHAR', 'payer_acct_name': 'VARCHAR', 'payee_acct_no': 'VARCHAR',
                'payee_acct_name': 'VARCHAR', 'amount': 'DECIMAL(18,2)', 'mof_div_code': 'VARCHAR',
                'summary': 'VARCHAR', 'status': 'VARCHAR', 'return_reason': 'VARCHAR', 'line': 'INTEGER',
                'bank_code': 'VARCHAR', 'source': 'VARCHAR'}})
            """,  # noqa: S608 — the start is an int from the database
            [str(target)],
        )
        start += done.count
        result.files += 1
        result.lines += done.count
        result.amount += done.amount
        target.unlink()
    return result


def load_book(con: duckdb.DuckDBPyConnection, url: str, year: int, work: Path) -> int:
    """The vouchers of the year from the finance database at ``url``, streamed in batches."""
    from caiwei.sandbox.generator import connect

    path = work / "book.csv"
    count = 0
    engine = connect(url)
    try:
        with engine.connect() as conn, path.open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow([c.split()[0] for c in BOOK_COLUMNS])
            result = conn.execution_options(stream_results=True).execute(sa.text(BOOK_SQL), {"year": year})
            while rows := result.fetchmany(BATCH):
                out.writerows(
                    (no, bank, agent or "", _iso(d), amt, acct, bool(refunded), _iso(lqd), lqd_amt)
                    for no, bank, agent, d, amt, acct, refunded, lqd, lqd_amt in rows
                )
                count += len(rows)
    finally:
        engine.dispose()
    _insert_csv(con, "book", path, BOOK_COLUMNS)
    path.unlink()
    return count


def _iso(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def load_pboc_monthly(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The central bank's monthly clearing totals per bank (the sandbox's PBOC file)."""
    from caiwei.sandbox.bankfiles import read_pboc_clearing

    rows = [
        (f"{t.bank_code}-{t.month}", t.bank_code, date.fromisoformat(f"{t.month}-01"), t.count, t.amount)
        for t in read_pboc_clearing(path)
    ]
    if rows:
        con.executemany("INSERT INTO clearing VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def sandbox_files(folder: Path, url: str) -> list[tuple[Path, formats.Definition, str]]:
    """The daily payment lists the sandbox's banks wrote, each with its bank's definition."""
    from caiwei.sandbox.generator import connect

    engine = connect(url)
    try:
        with engine.connect() as conn:
            layout = dict(conn.execute(sa.text("SELECT bank_code, file_format FROM ele_bank")).all())
    finally:
        engine.dispose()
    shipped = formats.shipped()
    out = []
    for path in sorted(folder.glob("*/*")):
        bank = path.parent.name
        if bank in layout and ("支付清单" in path.name or "_ZFQD_" in path.name):
            out.append((path, shipped[SANDBOX_LAYOUTS[layout[bank]]], bank))
    return out
