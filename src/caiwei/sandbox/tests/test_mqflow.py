"""Voucher and receipt messages over the real RabbitMQ on this machine; every fault leaves its trace."""

import os
import uuid
from datetime import date
from decimal import Decimal

import pika
import pytest

from caiwei.sandbox.mq import (
    VT_RECEIPT,
    VT_VOUCHER,
    VoucherMessage,
    parse_voucher_xml,
    queue_name,
    run_flow,
    voucher_xml,
)

AMQP = os.environ.get("CAIWEI_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="module")
def broker():
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP)).close()
    except pika.exceptions.AMQPError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"RabbitMQ 不可用：{exc}")
        pytest.skip(f"RabbitMQ 不可用：{exc}")
    return AMQP


@pytest.fixture
def prefix(broker):
    name = f"caiwei.test.{uuid.uuid4().hex[:8]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    channel = connection.channel()
    for bank in ("B1", "B2", "B3"):
        for direction in ("voucher", "receipt", "dead"):
            channel.queue_delete(queue_name(name, bank, direction))
    channel.exchange_delete(f"{name}.dlx")
    connection.close()


def vouchers(n: int = 210) -> list[VoucherMessage]:
    return [
        VoucherMessage(
            f"B{i % 3 + 1}",
            f"152500260000{i:05d}",
            "152500000",
            2026,
            date(2026, 11, 2 + i % 20),
            Decimal(f"{1000 + i * 37}.{i % 100:02d}"),
            "6200000000000001",
            "锡林郭勒盟教育局零余额账户",
            f"62284800{i:08d}",
            f"演练公司{i}号 & <分公司>",
            "办公用品采购，含税",
        )
        for i in range(n)
    ]


def drain(channel, queue: str) -> list[dict]:
    headers = []
    while True:
        method, properties, _ = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return headers
        headers.append(properties.headers)


def test_xml_round_trip_in_gbk():
    msg = vouchers(1)[0]
    body = voucher_xml(msg, VT_VOUCHER)
    assert body.startswith(b'<?xml version="1.0" encoding="GBK"?>')
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert parse_voucher_xml(body) == (VT_VOUCHER, msg)


def test_clean_flow(broker, prefix):
    result = run_flow(broker, vouchers(), prefix=prefix, seed=1)
    assert result["faults"] == []
    for bank in ("B1", "B2", "B3"):
        v, r, d = (result["queues"][queue_name(prefix, bank, x)] for x in ("voucher", "receipt", "dead"))
        assert v == {"published": 70, "consumed": 70, "left": 0}
        assert r == {"published": 70, "consumed": 70, "left": 0}
        assert d["left"] == 0


def test_sequences_are_contiguous_per_link(broker, prefix):
    run_flow(broker, vouchers(), prefix=prefix, simulate_bank=False)
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    channel = connection.channel()
    for bank in ("B1", "B2", "B3"):
        assert [h["seq"] for h in drain(channel, queue_name(prefix, bank, "voucher"))] == list(range(1, 71))
    connection.close()


def test_gap_and_duplicate_are_visible_in_headers(broker, prefix):
    result = run_flow(
        broker, vouchers(), prefix=prefix, faults={"gap": 1, "duplicate": 1}, seed=3, simulate_bank=False
    )
    assert result["counts"] == {"gap": 1, "duplicate": 1}
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    channel = connection.channel()
    seen_gaps, seen_dups = [], []
    for bank in ("B1", "B2", "B3"):
        queue = queue_name(prefix, bank, "voucher")
        seqs = [h["seq"] for h in drain(channel, queue)]
        seen_gaps += [(queue, s) for s in range(1, max(seqs) + 1) if s not in seqs]
        seen_dups += [(queue, s) for s in set(seqs) if seqs.count(s) > 1]
    connection.close()
    by_type = {f["type"]: (f["queue"], f["seq"]) for f in result["faults"]}
    assert seen_gaps == [by_type["gap"]] and seen_dups == [by_type["duplicate"]]


def test_duplicate_is_paid_once(broker, prefix):
    result = run_flow(broker, vouchers(), prefix=prefix, faults={"duplicate": 2}, seed=4)
    receipts = sum(q["published"] for name, q in result["queues"].items() if name.endswith(".receipt"))
    assert receipts == 210 and result["counts"] == {"duplicate": 2}


def test_dead_letters_land_in_the_dead_letter_queue(broker, prefix):
    result = run_flow(broker, vouchers(), prefix=prefix, faults={"dead_letter": 3}, seed=5)
    dead = sum(q["left"] for name, q in result["queues"].items() if name.endswith(".dead"))
    assert dead == 3 == result["counts"]["dead_letter"]
    receipts = sum(q["published"] for name, q in result["queues"].items() if name.endswith(".receipt"))
    assert receipts == 207


def test_unconsumed_receipts_stay_on_the_broker(broker, prefix):
    result = run_flow(broker, vouchers(), prefix=prefix, faults={"unconsumed": 4}, seed=6)
    records = [f for f in result["faults"] if f["type"] == "unconsumed"]
    assert len(records) == 4 and len({f["queue"] for f in records}) == 1
    assert result["queues"][records[0]["queue"]]["left"] == 4
    assert sorted(f["seq"] for f in records) == list(range(67, 71))  # the last four of that link


def test_stopped_consumer_leaves_vouchers_waiting(broker, prefix):
    result = run_flow(broker, vouchers(), prefix=prefix, faults={"stopped_consumer": 1}, seed=7)
    (record,) = result["faults"]
    assert record["type"] == "stopped_consumer" and record["left"] == 35
    assert result["queues"][record["queue"]]["left"] == 35
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    ok = connection.channel().queue_declare(record["queue"], passive=True)
    connection.close()
    assert ok.method.consumer_count == 0 and ok.method.message_count == 35
    others = [
        q for name, q in result["queues"].items() if name.endswith(".voucher") and name != record["queue"]
    ]
    assert all(q["left"] == 0 for q in others)


def test_receipts_carry_the_bank_transaction_number(broker, prefix):
    sent = {v.pay_cert_no: v for v in vouchers()}
    result = run_flow(broker, list(sent.values()), prefix=prefix, faults={"unconsumed": 5}, seed=8)
    queue = next(f["queue"] for f in result["faults"])
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    channel = connection.channel()
    bodies = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        bodies.append(got[2])
    connection.close()
    assert len(bodies) == 5
    for body in bodies:
        vt, receipt = parse_voucher_xml(body)
        assert vt == VT_RECEIPT and receipt.agent_business_no.startswith(receipt.bank_code)
        assert receipt.amount == sent[receipt.pay_cert_no].amount


def test_unknown_fault_is_refused(broker, prefix):
    with pytest.raises(ValueError, match="未知的报文故障"):
        run_flow(broker, vouchers(3), prefix=prefix, faults={"lost": 1})
