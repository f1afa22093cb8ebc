"""Reconciliation of the sandbox (issue 12 acceptance): the banks' daily files in their four layouts (each line with
its 交易状态 and 退票原因), the central bank's monthly clearing file and the message link's journal, written by the
voucher/receipt flow over the real RabbitMQ, against the finance database; every fault of the manifests (the
generator's and the flow's) that shows at the bank or on the link is a break of its class, and there is no other break
(precision = recall = 1.0), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import uuid
from datetime import date, timedelta

import duckdb
import pika
import pytest
import sqlalchemy as sa

from caiwei.conftest import scratch_db
from caiwei.recon.engine import Tolerance, create_inputs, load_business_days, reconcile
from caiwei.recon.sources import load_bank_files, load_book, load_mq, load_pboc_monthly, sandbox_files
from caiwei.sandbox.generator import GenerateSpec, business_days, parse_faults
from caiwei.sandbox.mq import queue_name
from caiwei.sandbox.mqexport import publish_from_db
from caiwei.sandbox.service import run_generate

AMQP = os.environ.get("CAIWEI_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
# Manifest fault → (break class, the manifest table whose keys the break names).
EXPECTED = {
    "voucher_missing_at_bank": ("book_only", "bank_file"),  # the bank's file lacks a paid voucher
    "bank_line_no_voucher": ("bank_only", "bank_file"),  # a bank line (its serial number) with no voucher
    "bank_amount_mismatch": ("amount", "pay_voucher_bill"),
    "voucher_no_receipt": ("book_only", "pay_voucher_bill"),  # sent, never paid by the bank
    "voucher_sign_failed": ("book_only", "pay_voucher_bill"),  # never reached the bank
    "bank_returned_not_refunded": ("status", "bank_file"),  # 退票 at the bank, no refund booked
    "bank_failed_line": ("status", "bank_file"),  # 失败 at the bank, paid with us
    "pboc_clearing_amount": ("clearing_amount", "pboc_file"),  # the PBOC month total differs (bank-YYYY-MM)
    "pboc_clearing_missing": ("clearing_missing", "pboc_file"),  # the PBOC file lacks a bank-month we cleared
}
FAULTS = ",".join(f"{name}=2" for name in EXPECTED)
MQ_FAULTS = {"gap": 2, "duplicate": 2, "unconsumed": 3, "stopped_consumer": 1, "dead_letter": 2}


def broker_or_skip() -> str:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP)).close()
    except pika.exceptions.AMQPError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"RabbitMQ 不可用：{exc}")
        pytest.skip(f"RabbitMQ 不可用：{exc}")
    return AMQP


def delete_queues(prefix: str, banks) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    for bank in banks:
        for direction in ("voucher", "receipt", "dead"):
            channel.queue_delete(queue_name(prefix, bank, direction))
    channel.exchange_delete(f"{prefix}.dlx")
    connection.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sandbox(request, tmp_path_factory):
    from caiwei.sandbox.tests.test_generator import engine_url

    amqp = broker_or_skip()
    tmp = tmp_path_factory.mktemp("recon")
    url = engine_url(request.param, scratch_db("caiwei_recon_test"), tmp_path_factory)
    spec = GenerateSpec(payments=3000, seed=2, faults=parse_faults(FAULTS))
    manifest = run_generate(url, spec, bank_dir=tmp / "files")
    prefix = f"caiwei.test.recon.{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        banks = [r[0] for r in conn.execute(sa.text("SELECT bank_code FROM ele_bank"))]
    engine.dispose()
    try:
        flow = publish_from_db(
            url, amqp, prefix=prefix, faults=MQ_FAULTS, limit=600, seed=3, journal=tmp / "mq.jsonl"
        )
        yield url, tmp, manifest, spec, flow
    finally:
        delete_queues(prefix, banks)


def expected_mq(flow: dict) -> set[tuple[str, str]]:
    """The flow's faults as (break class, key): gaps and duplicates by the note naming bank and sequence number,
    receipts missing and dead letters by the voucher. A stopped bank's vouchers still waiting have no receipt; so
    have the vouchers whose receipts finance left on the broker."""
    out = set()
    for f in flow["faults"]:
        bank = f["queue"].split(".")[-2]
        if f["type"] == "gap":
            out.add(("mq_seq_gap", f"{bank} 凭证报文 缺第 {f['seq']} 号"))
        elif f["type"] == "duplicate":
            out.add(("mq_seq_duplicate", f"{bank} 凭证报文 第 {f['seq']} 号出现 2 次"))
        elif f["type"] == "unconsumed":
            out.add(("mq_receipt_missing", f["pay_cert_no"]))
        elif f["type"] == "stopped_consumer":
            assert f["pay_cert_nos"], "the stopped bank left vouchers waiting"
            out.update(("mq_receipt_missing", c) for c in f["pay_cert_nos"])
        elif f["type"] == "dead_letter":
            out.add(("mq_dead_letter", f["pay_cert_no"]))
    return out


def test_every_fault_is_a_break_of_its_class_and_nothing_else(sandbox):
    url, tmp, manifest, spec, flow = sandbox
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
    mq = load_mq(con, [tmp / "mq.jsonl"], tmp)
    assert mq.refused == [] and mq.messages > 600
    overdue = sum(1 for d in days if spec.as_of - timedelta(days=spec.overdue_days) < d <= spec.as_of)
    result = reconcile(
        con,
        Tolerance(date_window=1, transit_days=overdue, receipt_minutes=0),
        spec.as_of,
        clearing_period="month",
    )

    expected = set()
    for fault, (kind, table) in EXPECTED.items():
        for key in manifest.keys(fault, table):
            expected.add((kind, key))
    assert len(expected) == 2 * len(EXPECTED)
    mq_expected = expected_mq(flow)
    assert {k for k, _ in mq_expected} == {
        "mq_seq_gap",
        "mq_seq_duplicate",
        "mq_receipt_missing",
        "mq_dead_letter",
    }
    expected |= mq_expected
    got = set()
    for b in result.breaks:
        if b["kind"] == "bank_only":
            serial = con.execute(
                "SELECT agent_business_no FROM bank WHERE line_id = ?", [b["lines"][0]]
            ).fetchone()
            got.add((b["kind"], serial[0]))
        elif b["kind"] in ("mq_seq_gap", "mq_seq_duplicate"):
            got.add((b["kind"], b["note"]))
        elif b["kind"].startswith("clearing"):  # note: the PBOC line (bank-YYYY-MM) or "bank YYYY-MM-01"
            bank, month = re.fullmatch(r"(\S+)[ -](\d{4}-\d{2})(?:-01)?", b["note"]).groups()
            got.add((b["kind"], f"{bank}-{month}"))
            assert b["vouchers"], b  # the vouchers of that bank and month are listed
        else:
            assert len(b["vouchers"]) == 1, b
            got.add((b["kind"], b["vouchers"][0]))
    assert got == expected, (got - expected, expected - got)
    assert len(result.breaks) == len(got)  # one break per fault
    # Every voucher sent over the link has its receipt, but those the link's faults say.
    unanswered = {k for k in mq_expected if k[0] in ("mq_receipt_missing", "mq_dead_letter")}
    assert result.cleared_lines > 0 and result.mq_receipted == 600 - len(unanswered)

    # The files carry clean 退票 lines too: whole refunds booked on our side, matched without a break.
    status_faults = {
        k for f in ("bank_returned_not_refunded", "bank_failed_line") for k in manifest.keys(f, "bank_file")
    }
    returned = con.execute(
        "SELECT b.pay_cert_no FROM bank b JOIN book v ON v.vou_no = b.pay_cert_no "
        "WHERE b.status = '退票' AND v.refunded AND b.return_reason <> ''"
    ).fetchall()
    assert len(returned) >= 3 and not {r[0] for r in returned} & status_faults
    assert con.execute("SELECT count(*) FROM bank WHERE status = '失败'").fetchone()[0] == 2
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sent = conn.execute(
            sa.text("SELECT count(*) FROM pay_voucher_bill WHERE xpay_date IS NOT NULL")
        ).scalar()
    engine.dispose()
    assert result.matched_by_key == (
        sent
        - len(manifest.keys("voucher_missing_at_bank", "bank_file"))
        - len(manifest.keys("bank_amount_mismatch", "pay_voucher_bill"))
        - len(status_faults)
    )
