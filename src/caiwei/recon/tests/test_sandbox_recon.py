"""Reconciliation of the sandbox (issue 12 acceptance): the banks' daily files in their four layouts and the central
bank's monthly clearing file against the finance database; every fault of the manifest that shows at the bank is a
break of its class, and there is no other break (precision = recall = 1.0), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest
import sqlalchemy as sa

from caiwei.conftest import scratch_db
from caiwei.recon.engine import Tolerance, create_inputs, load_business_days, reconcile
from caiwei.recon.sources import load_bank_files, load_book, load_pboc_monthly, sandbox_files
from caiwei.sandbox.generator import GenerateSpec, business_days, parse_faults
from caiwei.sandbox.service import run_generate

# Manifest fault → (break class, the manifest table whose keys the break names).
EXPECTED = {
    "voucher_missing_at_bank": ("book_only", "bank_file"),  # the bank's file lacks a paid voucher
    "bank_line_no_voucher": ("bank_only", "bank_file"),  # a bank line (its serial number) with no voucher
    "bank_amount_mismatch": ("amount", "pay_voucher_bill"),
    "voucher_no_receipt": ("book_only", "pay_voucher_bill"),  # sent, never paid by the bank
    "voucher_sign_failed": ("book_only", "pay_voucher_bill"),  # never reached the bank
}
FAULTS = ",".join(f"{name}=2" for name in EXPECTED)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sandbox(request, tmp_path_factory):
    from caiwei.sandbox.tests.test_generator import engine_url

    tmp = tmp_path_factory.mktemp("recon")
    url = engine_url(request.param, scratch_db("caiwei_recon_test"), tmp_path_factory)
    spec = GenerateSpec(payments=3000, seed=2, faults=parse_faults(FAULTS))
    manifest = run_generate(url, spec, bank_dir=tmp / "files")
    return url, tmp, manifest, spec


def test_every_bank_fault_is_a_break_of_its_class_and_nothing_else(sandbox):
    url, tmp, manifest, spec = sandbox
    con = duckdb.connect()
    create_inputs(con)
    days = business_days(spec.year)
    load_business_days(
        con, [*days, *(d for d in business_days(spec.year + 1) if d < date(spec.year + 1, 2, 1))]
    )
    loaded = load_bank_files(con, sandbox_files(tmp / "files", url), tmp)
    assert loaded.refused == [] and loaded.files >= 4
    assert load_book(con, url, spec.year, tmp) > 0
    assert load_pboc_monthly(con, tmp / "files" / "pboc" / f"clearing-{spec.year}.xml") > 0
    overdue = sum(1 for d in days if spec.as_of - timedelta(days=spec.overdue_days) < d <= spec.as_of)
    result = reconcile(
        con, Tolerance(date_window=1, transit_days=overdue), spec.as_of, clearing_period="month"
    )

    expected = set()
    for fault, (kind, table) in EXPECTED.items():
        for key in manifest.keys(fault, table):
            expected.add((kind, key))
    got = set()
    for b in result.breaks:
        if b["kind"] == "bank_only":
            serial = con.execute(
                "SELECT agent_business_no FROM bank WHERE line_id = ?", [b["lines"][0]]
            ).fetchone()
            got.add((b["kind"], serial[0]))
        else:
            got.update((b["kind"], v) for v in b["vouchers"])
    assert got == expected
    assert len(expected) == 2 * len(EXPECTED)
    assert result.matched_by_key > 2500 and result.cleared_lines > 0
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sent = conn.execute(
            sa.text("SELECT count(*) FROM pay_voucher_bill WHERE xpay_date IS NOT NULL")
        ).scalar()
    engine.dispose()
    assert result.matched_by_key == sent - len(manifest.keys("voucher_missing_at_bank", "bank_file")) - len(
        manifest.keys("bank_amount_mismatch", "pay_voucher_bill")
    )
