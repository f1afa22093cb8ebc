"""Sources of a reconciliation 对账数据来源, each loaded into DuckDB in the engine's normalised shape without holding a
side in Python: the agent banks' files (through their format definitions, normalised to UTF-8 CSV all or nothing,
then read by DuckDB), the central bank's clearing file, the finance database's vouchers (streamed from the
registered target in batches to a CSV file DuckDB reads), and the message link's journal 报文日志 (``load_mq``).

The message journal is JSON lines, one per message the finance side's MQ adapter sent or took, written as it
happens (the sandbox's flow writes one, see caiwei.sandbox.mq.Journal)::

    {"direction": "voucher", "bank": "B102", "seq": 17, "vt_code": "5201", "pay_cert_no": "152500260000123",
     "time": "2026-07-13T09:30:01.250+08:00"}

``direction``: voucher (凭证，财政→银行，published), receipt (回单，银行→财政，taken), dead (a voucher seen in the
dead-letter queue). ``seq`` is the link's sequence number from the message header. A time without a UTC offset is
China Standard Time. Other keys are ignored."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlalchemy as sa

from . import formats
from .engine import BOOK_COLUMNS, MQ_COLUMNS, MQ_DIRECTIONS

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


# --- the message link's journal -------------------------------------------------------------------------------------

CHINA = timezone(timedelta(hours=8))
MQ_FIELDS = {
    "direction": "方向",
    "bank": "银行",
    "seq": "序号",
    "vt_code": "报文类型",
    "pay_cert_no": "支付凭证号",
    "time": "时间",
}
MAX_JOURNAL_LINE = 64 * 1024
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,20}")


@dataclass
class MqLoaded:
    journals: int = 0
    messages: int = 0
    refused: list[dict] = field(default_factory=list)  # FormatError.as_dict() of each refused journal


def journal_files(path: Path) -> list[Path]:
    """A journal file, or the *.jsonl journals of a folder in name order."""
    return sorted(path.glob("*.jsonl")) if path.is_dir() else [path]


def _message(raw: bytes, name: str, number: int, offset: int) -> tuple:
    def fail(field_name: str, problem: str) -> formats.FormatError:
        return formats.FormatError(name, number, MQ_FIELDS.get(field_name, field_name), problem, offset)

    if len(raw) > MAX_JOURNAL_LINE:
        raise fail("行", f"超过 {MAX_JOURNAL_LINE} 字节")
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise fail("行", "不是 UTF-8 编码的文字") from None
    except json.JSONDecodeError as exc:
        raise fail("行", f"不是合法的 JSON：{exc.msg}（第 {exc.pos + 1} 个字符）") from None
    if not isinstance(record, dict):
        raise fail("行", "应是一个 JSON 对象")
    for key in ("direction", "bank", "seq", "pay_cert_no", "time"):
        if key not in record:
            raise fail(key, "缺少该项")
    direction = record["direction"]
    if direction not in MQ_DIRECTIONS:
        raise fail("direction", f"应为 {'、'.join(MQ_DIRECTIONS)} 之一：“{str(direction)[:20]}”")
    bank = record["bank"]
    if not isinstance(bank, str) or not _CODE.fullmatch(bank):
        raise fail("bank", "应为 1–20 位字母、数字的银行编码")
    seq = record["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**62:
        raise fail("seq", f"应为正整数：“{str(seq)[:20]}”")
    cert, vt = record["pay_cert_no"], record.get("vt_code", "")
    if not isinstance(cert, str) or not cert.strip() or len(cert) > 60 or any(ord(c) < 32 for c in cert):
        raise fail("pay_cert_no", "应为非空、至多 60 个字符的文字")
    if not isinstance(vt, str) or len(vt) > 20 or any(ord(c) < 32 for c in vt):
        raise fail("vt_code", "应为至多 20 个字符的文字")
    try:
        when = datetime.fromisoformat(str(record["time"]))
    except ValueError:
        raise fail("time", f"不是 ISO 8601 时间：“{str(record['time'])[:40]}”") from None
    when = (when if when.tzinfo else when.replace(tzinfo=CHINA)).astimezone(UTC).replace(tzinfo=None)
    return direction, bank, seq, vt, cert.strip(), when.isoformat(sep=" ")


def _normalise_journal(path: Path, target: Path, start: int) -> int:
    """The journal's messages as UTF-8 CSV with ids from ``start + 1``; all or nothing (see formats.normalise)."""
    name = path.name
    if not path.is_file():
        raise formats.FormatError(name, 0, "文件", "不存在或不是普通文件")
    tmp = target.with_name(f".{target.name}.part")
    count, offset = 0, 0
    try:
        with path.open("rb") as source, tmp.open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow([c.split()[0] for c in MQ_COLUMNS])
            for number, raw in enumerate(source, start=1):
                if raw.strip():
                    count += 1
                    out.writerow([start + count, *_message(raw.strip(), name, number, offset), name, number])
                offset += len(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


def load_mq(con: duckdb.DuckDBPyConnection, journals: Iterable[Path], work: Path) -> MqLoaded:
    """Each message journal read whole or refused whole (a FormatError naming the file, line, byte offset and
    field), the accepted ones appended to ``mq`` with ids continuing after those already there."""
    result = MqLoaded()
    start = con.execute("SELECT coalesce(max(msg_id), 0) FROM mq").fetchone()[0]
    types = ", ".join(f"'{c.split()[0]}': '{c.split()[1]}'" for c in MQ_COLUMNS)
    for path in journals:
        target = work / f"mq-{result.journals + len(result.refused):05d}.csv"
        try:
            count = _normalise_journal(path, target, int(start))
        except formats.FormatError as exc:
            result.refused.append(exc.as_dict())
            continue
        con.execute(
            f"INSERT INTO mq SELECT * FROM read_csv(?, header = true, auto_detect = false, nullstr = '', "  # noqa: S608
            f"quote = '\"', escape = '\"', columns = {{{types}}})",
            [str(target)],
        )
        target.unlink()
        start += count
        result.journals += 1
        result.messages += count
    return result
