"""Voucher messages over a real RabbitMQ 报文链路: finance → bank payment vouchers, bank → finance receipts.

Each bank has a voucher queue and a receipt queue with per-link sequence numbers in the message headers, and a
dead-letter queue behind a dead-letter exchange. Faults on request leave the traces operations staff look for:
a sequence gap, a duplicate, receipts left unconsumed, a stopped consumer, a dead-lettered voucher.

The finance side keeps a journal 报文日志 (``Journal``, JSON lines, what reconciliation reads, see
caiwei.recon.sources.load_mq): each voucher as it is published, each receipt as finance takes it, and each voucher its
dead-letter monitor finds in a dead-letter queue (looked at and put back, never taken).
Plain Python over pika (no Django).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pika
from defusedxml.ElementTree import fromstring

VT_VOUCHER, VT_RECEIPT = "5201", "2301"
FAULTS = ("gap", "duplicate", "unconsumed", "stopped_consumer", "dead_letter")
FIELDS = [
    ("AdmDivCode", "mof_div_code"),
    ("StYear", "fiscal_year"),
    ("VouDate", "vou_date"),
    ("VoucherNo", "pay_cert_no"),
    ("AgentBusinessNo", "agent_business_no"),
    ("PayAcctNo", "payer_acct_no"),
    ("PayAcctName", "payer_acct_name"),
    ("PayeeAcctNo", "payee_acct_no"),
    ("PayeeAcctName", "payee_acct_name"),
    ("PayAmt", "amount"),
    ("Remark", "remark"),
    ("AgentBankCode", "bank_code"),
]


@dataclass(frozen=True)
class VoucherMessage:
    bank_code: str
    pay_cert_no: str
    mof_div_code: str
    fiscal_year: int
    vou_date: date
    amount: Decimal
    payer_acct_no: str
    payer_acct_name: str
    payee_acct_no: str
    payee_acct_name: str
    remark: str
    agent_business_no: str = ""


def voucher_xml(msg: VoucherMessage, vt_code: str) -> bytes:
    """A GBK ``<Voucher>`` document in the style of the MoF e-payment message spec."""
    root = ET.Element("MOF")
    voucher = ET.SubElement(ET.SubElement(root, "VoucherBody", {"VtCode": vt_code}), "Voucher")
    ET.SubElement(voucher, "VtCode").text = vt_code
    for tag, attr in FIELDS:
        value = getattr(msg, attr)
        if attr == "vou_date":
            value = value.strftime("%Y%m%d")
        elif attr == "amount":
            value = f"{value:.2f}"
        ET.SubElement(voucher, tag).text = str(value)
    return b'<?xml version="1.0" encoding="GBK"?>\n' + ET.tostring(root, encoding="unicode").encode("gbk")


PROLOG = re.compile(rb'^\s*<\?xml[^>]*?encoding=["\']([A-Za-z0-9_-]+)["\'][^>]*\?>')


def parse_voucher_xml(body: bytes) -> tuple[str, VoucherMessage]:
    match = PROLOG.match(body)
    text = (body[match.end() :] if match else body).decode(match.group(1).decode() if match else "utf-8")
    voucher = fromstring(text).find("VoucherBody/Voucher")
    if voucher is None:
        raise ValueError("报文缺少 VoucherBody/Voucher")
    values = {}
    for tag, attr in FIELDS:
        node = voucher.find(tag)
        if node is None:
            raise ValueError(f"报文缺少元素 {tag}")
        values[attr] = node.text or ""
    values["fiscal_year"] = int(values["fiscal_year"])
    values["vou_date"] = datetime.strptime(values["vou_date"], "%Y%m%d").date()
    values["amount"] = Decimal(values["amount"])
    return voucher.findtext("VtCode", ""), VoucherMessage(**values)


def queue_name(prefix: str, bank_code: str, direction: str) -> str:
    return f"{prefix}.{bank_code}.{direction}"


class Journal:
    """The finance side's message journal: one JSON line per message, written when it is sent or taken."""

    def __init__(self, path: Path | None) -> None:
        self.handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = path.open("w", encoding="utf-8")

    def write(self, direction: str, headers: Mapping) -> None:
        if self.handle is None:
            return
        record = {
            "direction": direction,
            "bank": headers["bank_code"],
            "seq": headers["seq"],
            "vt_code": headers["vt_code"],
            "pay_cert_no": headers["pay_cert_no"],
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class _Link:
    """Counters of one queue, for the manifest."""

    def __init__(self) -> None:
        self.seq = 0
        self.published = 0
        self.consumed = 0


def run_flow(
    amqp_url: str,
    vouchers: Iterable[VoucherMessage],
    *,
    prefix: str = "caiwei.sandbox",
    faults: Mapping[str, int] | None = None,
    seed: int = 0,
    purge: bool = True,
    simulate_bank: bool = True,
    journal: Path | None = None,
) -> dict:
    """Publish every voucher to its bank, let each bank answer with receipts, let finance take the receipts; with
    ``journal``, finance's message journal is written there (replacing the file)."""
    faults = dict(faults or {})
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"未知的报文故障：{'、'.join(sorted(unknown))}，可选：{'、'.join(FAULTS)}")
    by_bank: dict[str, list[VoucherMessage]] = defaultdict(list)
    for msg in vouchers:
        by_bank[msg.bank_code].append(msg)
    banks = sorted(by_bank)
    rng = random.Random(seed)
    all_msgs = [(b, i) for b in banks for i in range(len(by_bank[b]))]
    # Choose where each fault goes, without two faults on one message.
    taken: set[tuple[str, int]] = set()

    stopped = set(rng.sample(banks, min(faults.get("stopped_consumer", 0), len(banks))))

    def pick(
        count: int, allow_first: bool = True, skip_banks: set[str] = frozenset()
    ) -> list[tuple[str, int]]:
        pool = [
            m for m in all_msgs if m not in taken and (allow_first or m[1] > 0) and m[0] not in skip_banks
        ]
        chosen = rng.sample(pool, min(count, len(pool)))
        taken.update(chosen)
        return chosen

    gaps = set(pick(faults.get("gap", 0), allow_first=False))
    duplicates = set(pick(faults.get("duplicate", 0)))
    dead = set(pick(faults.get("dead_letter", 0), skip_banks=stopped))  # a stopped bank never rejects
    unconsumed_bank = (
        rng.choice([b for b in banks if b not in stopped] or banks) if faults.get("unconsumed") else None
    )

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    links: dict[str, _Link] = defaultdict(_Link)
    records: list[dict] = []
    dlx = f"{prefix}.dlx"
    log = Journal(journal)
    try:
        channel.exchange_declare(dlx, exchange_type="direct", durable=True)
        for bank in banks:
            names = [queue_name(prefix, bank, d) for d in ("voucher", "receipt", "dead")]
            if purge:
                for name in names:
                    channel.queue_delete(name)
            channel.queue_declare(
                names[0],
                durable=True,
                arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": bank},
            )
            channel.queue_declare(names[1], durable=True)
            channel.queue_declare(names[2], durable=True)
            channel.queue_bind(names[2], dlx, routing_key=bank)

        def publish(queue: str, body: bytes, seq: int, bank: str, vt: str, cert: str) -> None:
            headers = {"seq": seq, "bank_code": bank, "vt_code": vt, "pay_cert_no": cert}
            channel.basic_publish(
                "",
                queue,
                body,
                pika.BasicProperties(
                    delivery_mode=2, content_type="application/xml", content_encoding="GBK", headers=headers
                ),
            )
            links[queue].published += 1
            if (
                vt == VT_VOUCHER
            ):  # finance's own sending; the banks' receipts are journaled when finance takes them
                log.write("voucher", headers)

        for bank in banks:
            queue = queue_name(prefix, bank, "voucher")
            link = links[queue]
            for index, msg in enumerate(by_bank[bank]):
                if (bank, index) in gaps:
                    link.seq += 1
                    records.append(
                        {"type": "gap", "queue": queue, "seq": link.seq, "pay_cert_no": msg.pay_cert_no}
                    )
                link.seq += 1
                body = voucher_xml(msg, VT_VOUCHER)
                publish(queue, body, link.seq, bank, VT_VOUCHER, msg.pay_cert_no)
                if (bank, index) in duplicates:
                    publish(queue, body, link.seq, bank, VT_VOUCHER, msg.pay_cert_no)
                    records.append(
                        {"type": "duplicate", "queue": queue, "seq": link.seq, "pay_cert_no": msg.pay_cert_no}
                    )
        if simulate_bank:
            _simulate_banks(channel, prefix, banks, by_bank, links, records, dead, stopped, seed, publish)
            _simulate_finance(
                channel, prefix, banks, links, records, unconsumed_bank, faults.get("unconsumed", 0), log
            )
        _watch_dead_letters(channel, prefix, banks, log)
        queues = {}
        for name in sorted(links) + [queue_name(prefix, b, "dead") for b in banks]:
            left = channel.queue_declare(name, passive=True).method.message_count
            link = links.get(name, _Link())
            queues[name] = {"published": link.published, "consumed": link.consumed, "left": left}
    finally:
        log.close()
        connection.close()
    counts = defaultdict(int)
    for record in records:
        counts[record["type"]] += 1
    return {"prefix": prefix, "queues": queues, "faults": records, "counts": dict(counts)}


def _simulate_banks(channel, prefix, banks, by_bank, links, records, dead, stopped, seed, publish) -> None:
    """Each bank takes its vouchers, pays once per voucher number, and answers with a receipt."""
    index_of = {(b, m.pay_cert_no): i for b in banks for i, m in enumerate(by_bank[b])}
    for bank in banks:
        queue = queue_name(prefix, bank, "voucher")
        receipts = queue_name(prefix, bank, "receipt")
        seen: set[str] = set()
        limit = (len(by_bank[bank]) + 1) // 2 if bank in stopped else None
        taken = 0
        while limit is None or taken < limit:
            method, properties, body = channel.basic_get(queue)
            if method is None:
                break
            taken += 1
            links[queue].consumed += 1
            _, msg = parse_voucher_xml(body)
            if (bank, index_of[(bank, msg.pay_cert_no)]) in dead:
                channel.basic_reject(method.delivery_tag, requeue=False)
                records.append(
                    {
                        "type": "dead_letter",
                        "queue": queue_name(prefix, bank, "dead"),
                        "seq": properties.headers["seq"],
                        "pay_cert_no": msg.pay_cert_no,
                    }
                )
                continue
            channel.basic_ack(method.delivery_tag)
            if msg.pay_cert_no in seen:
                continue  # the bank pays a voucher number once
            seen.add(msg.pay_cert_no)
            link = links[receipts]
            link.seq += 1
            receipt = replace(
                msg, agent_business_no=f"{bank}{msg.vou_date:%Y%m%d}{seed % 100:02d}{link.seq:08d}"
            )
            publish(receipts, voucher_xml(receipt, VT_RECEIPT), link.seq, bank, VT_RECEIPT, msg.pay_cert_no)
        if bank in stopped:
            left = channel.queue_declare(queue, passive=True).method.message_count
            waiting = [properties.headers for properties in _peek(channel, queue)]
            records.append(
                {
                    "type": "stopped_consumer",
                    "queue": queue,
                    "seq": None,
                    "pay_cert_no": None,
                    "left": left,
                    # the vouchers waiting that the bank has not paid (a duplicate's first copy may have been)
                    "pay_cert_nos": sorted({h["pay_cert_no"] for h in waiting} - seen),
                }
            )


def _peek(channel, queue: str) -> list:
    """The properties of every message in ``queue``, looked at and put back (basic_get, then one nack requeueing
    them all): the queue is as it was."""
    seen, last_tag = [], None
    while True:
        method, properties, _ = channel.basic_get(queue)
        if method is None:
            break
        last_tag = method.delivery_tag
        seen.append(properties)
    if last_tag is not None:
        channel.basic_nack(last_tag, multiple=True, requeue=True)
    return seen


def _watch_dead_letters(channel, prefix, banks, log: Journal) -> None:
    """Finance's dead-letter monitor: each voucher in a dead-letter queue journaled once (the queues keep them for
    the operators)."""
    for bank in banks:
        for properties in _peek(channel, queue_name(prefix, bank, "dead")):
            log.write("dead", properties.headers)


def _simulate_finance(channel, prefix, banks, links, records, unconsumed_bank, unconsumed, log) -> None:
    """Finance takes the receipts, except the last ``unconsumed`` of one bank."""
    for bank in banks:
        queue = queue_name(prefix, bank, "receipt")
        keep = unconsumed if bank == unconsumed_bank else 0
        to_take = max(0, links[queue].published - keep)
        for _ in range(to_take):
            method, properties, _ = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            links[queue].consumed += 1
            log.write("receipt", properties.headers)
        if keep:
            # Only looked at, never taken: back on the broker, where they are meant to stay.
            for properties in _peek(channel, queue):
                records.append(
                    {
                        "type": "unconsumed",
                        "queue": queue,
                        "seq": properties.headers["seq"],
                        "pay_cert_no": properties.headers["pay_cert_no"],
                    }
                )
