"""Voucher and receipt messages for the sandbox's vouchers over RabbitMQ (see mq.run_flow)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy as sa

from .bankexport import money
from .generator import connect
from .mq import VoucherMessage, run_flow

VOUCHERS_SQL = """
SELECT v.bank_code, v.pay_cert_no, v.mof_div_code, v.fiscal_year, v.vou_date, v.pay_amt, p.payer_acct_no,
       a.account_name, p.payee_acct_no, p.payee_acct_name, p.use_des
FROM pay_voucher_bill v
JOIN pay_voucher p ON p.pay_app_id = v.pay_app_id
JOIN agency_account a ON a.account_no = p.payer_acct_no
ORDER BY v.vou_date DESC, v.pay_cert_no
"""


def publish_from_db(
    url: str,
    amqp_url: str,
    *,
    prefix: str,
    faults: dict[str, int],
    limit: int,
    seed: int,
    journal: Path | None = None,
) -> dict:
    engine = connect(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(VOUCHERS_SQL)).fetchmany(limit)
    finally:
        engine.dispose()
    messages = [
        VoucherMessage(
            bank_code=r[0],
            pay_cert_no=r[1],
            mof_div_code=r[2],
            fiscal_year=int(r[3]),
            vou_date=date.fromisoformat(r[4]) if isinstance(r[4], str) else r[4],
            amount=money(r[5]),
            payer_acct_no=r[6],
            payer_acct_name=r[7],
            payee_acct_no=r[8],
            payee_acct_name=r[9],
            remark=r[10],
        )
        for r in rows
    ]
    return run_flow(amqp_url, messages, prefix=prefix, faults=faults, seed=seed, journal=journal)
