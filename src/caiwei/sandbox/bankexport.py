"""The bank side of the sandbox: each agent bank's files and the central bank's clearing totals, read from the
sandbox database and written in each bank's own layout (bankfiles). Bank-file faults come from the manifest.

Each line's outcome 交易状态: 成功, except a voucher whose whole paid amount came back as a refund booked by the as-of
date (the bank's 退票, with the refund's reason in the bank's words), and the vouchers of the status faults: 退票 with
no refund booked (bank_returned_not_refunded) and 失败 (bank_failed_line) while we show them paid."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from .bankfiles import BankLine, ClearingTotal, write_bank_files, write_pboc_clearing
from .codes import BANK_FAIL_REASONS, BANK_RETURN_REASONS, REFUND_RETURN_REASON
from .generator import Manifest, connect

CENT = Decimal("0.01")

LINES_SQL = """
SELECT v.bank_code, v.pay_cert_no, v.agent_business_no, v.xpay_date, v.xpay_amt, p.payer_acct_no, a.account_name,
       p.payee_acct_no, p.payee_acct_name, v.mof_div_code, p.use_des
FROM pay_voucher_bill v
JOIN pay_voucher p ON p.pay_app_id = v.pay_app_id
JOIN agency_account a ON a.account_no = p.payer_acct_no
WHERE v.xpay_date IS NOT NULL
ORDER BY v.bank_code, v.xpay_date, v.pay_cert_no
"""


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


REFUNDS_SQL = """
SELECT k.pay_cert_no, k.back_date, k.back_amt, v.xpay_amt, k.back_reason
FROM pay_back_info k JOIN pay_voucher_bill v ON v.pay_cert_no = k.pay_cert_no
"""


def _day(value) -> date:
    return date.fromisoformat(str(value)[:10]) if not isinstance(value, date) else value


def statuses(conn, manifest: Manifest) -> dict[str, tuple[str, str]]:
    """支付凭证号 → (交易状态, 退票原因) of the lines that are not 成功: the whole-amount refunds booked by the as-of
    date (about one payment in two hundred), then the status faults of the manifest."""
    as_of = date.fromisoformat(manifest.spec["as_of"])
    out = {}
    for cert, day, amount, paid, reason in conn.execute(sa.text(REFUNDS_SQL)):
        if paid is not None and _day(day) <= as_of and money(amount) == money(paid):
            out[cert] = ("退票", REFUND_RETURN_REASON.get(reason, BANK_RETURN_REASONS[-1]))
    for n, cert in enumerate(manifest.keys("bank_returned_not_refunded", "bank_file")):
        out[cert] = ("退票", BANK_RETURN_REASONS[n % len(BANK_RETURN_REASONS)])
    for n, cert in enumerate(manifest.keys("bank_failed_line", "bank_file")):
        out[cert] = ("失败", BANK_FAIL_REASONS[n % len(BANK_FAIL_REASONS)])
    return out


def bank_lines(conn, status: dict[str, tuple[str, str]] | None = None) -> dict[str, list[BankLine]]:
    status = status or {}
    lines: dict[str, list[BankLine]] = defaultdict(list)
    for row in conn.execute(sa.text(LINES_SQL)):
        pay_date = date.fromisoformat(row[3]) if isinstance(row[3], str) else row[3]
        lines[row[0]].append(
            BankLine(
                row[0],
                row[1],
                row[2],
                pay_date,
                money(row[4]),
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
                *status.get(row[1], ("成功", "")),
            )
        )
    return lines


def export_bank_files(url: str, out_dir: Path, manifest: Manifest) -> list[Path]:
    """Write every bank's daily lists and monthly reconciliation files, and the PBOC clearing totals."""
    engine = connect(url)
    try:
        with engine.connect() as conn:
            lines = bank_lines(conn, statuses(conn, manifest))
            banks = conn.execute(sa.text("SELECT bank_code, bank_name, file_format FROM ele_bank")).all()
            clearing = conn.execute(
                sa.text(
                    "SELECT bank_code, lqd_date, vou_count, amount FROM pay_clearing ORDER BY bank_code, lqd_date"
                )
            ).all()
            year = manifest.spec["year"]
    finally:
        engine.dispose()
    missing = set(manifest.keys("voucher_missing_at_bank", "bank_file"))
    paths: list[Path] = []
    for extra in manifest.keys("bank_line_no_voucher", "bank_file"):
        # A line the bank paid with no voucher behind it: modelled on a real line of the same bank and day.
        bank = extra[:4]
        model = lines[bank][len(lines[bank]) // 2]
        lines[bank].append(
            BankLine(
                bank,
                f"WU{extra[-12:]}",
                extra,
                model.pay_date,
                money(model.amount) + CENT * 37,
                model.payer_acct_no,
                model.payer_acct_name,
                "6228480000000000000",
                "演练收款人（无凭证）",
                model.mof_div_code,
                "未见财政凭证的支付",
            )
        )
    for code, name, fmt in banks:
        kept = [line for line in lines.get(code, []) if line.pay_cert_no not in missing]
        if kept:
            paths += write_bank_files(out_dir, code, name, fmt, kept, year)
    totals: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal(0)])
    for bank, lqd_date, count, amount in clearing:
        month = str(lqd_date)[:7]
        totals[(bank, month)][0] += count
        totals[(bank, month)][1] += money(amount)
    for key in manifest.keys("pboc_clearing_amount", "pboc_file"):  # "bank-YYYY-MM"
        totals[(key[:-8], key[-7:])][1] += CENT * 100
    for key in manifest.keys("pboc_clearing_missing", "pboc_file"):
        totals.pop((key[:-8], key[-7:]), None)
    paths.append(
        write_pboc_clearing(
            out_dir, [ClearingTotal(b, m, c, a) for (b, m), (c, a) in sorted(totals.items())], year
        )
    )
    return paths
