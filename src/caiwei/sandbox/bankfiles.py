"""Agent-bank files 银行文件: daily payment lists and monthly reconciliation files, each bank in its own layout,
and the central bank's clearing totals. Writers and readers; no Django import.

Layouts: csv_gbk (GBK CSV with a 合计 row), xlsx (title, header, 合计), fixed_width (GBK, widths in bytes, H/D/T
records, amounts in fen), xml_gbk (MoF voucher style, VtCode 5201 daily detail, 3208 monthly reconciliation).
Every line carries the bank's outcome 交易状态 (成功 / 退票 / 失败) and, for a 退票 or 失败, the reason 退票原因; the
fixed-width layout writes the outcome as a two-digit code (``FIXED_STATUS``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from xml.etree import ElementTree as ET

from defusedxml.ElementTree import ParseError, fromstring

CENT = Decimal("0.01")
FORMATS = ("csv_gbk", "xlsx", "fixed_width", "xml_gbk")
VT_DAILY, VT_MONTHLY = "5201", "3208"


@dataclass(frozen=True)
class BankLine:
    bank_code: str
    pay_cert_no: str
    agent_business_no: str
    pay_date: date
    amount: Decimal
    payer_acct_no: str
    payer_acct_name: str
    payee_acct_no: str
    payee_acct_name: str
    mof_div_code: str
    summary: str
    status: str = "成功"  # 成功 / 退票 / 失败
    return_reason: str = ""  # 退票原因 (or why it failed); empty for 成功


STATUSES = ("成功", "退票", "失败")


@dataclass(frozen=True)
class ClearingTotal:
    bank_code: str
    month: str
    count: int
    amount: Decimal


class BankFileError(ValueError):
    """A malformed bank file; the message names the file, the row and the field (in Chinese)."""


def _fail(path: Path, row: int, field: str, problem: str) -> BankFileError:
    return BankFileError(f"{path.name} 第 {row} 行“{field}”：{problem}")


def _amount(text: str, path: Path, row: int, field: str = "金额") -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation as exc:
        raise _fail(path, row, field, f"不是金额：“{text}”") from exc
    return value.quantize(CENT)


def _day(text: str, path: Path, row: int, field: str = "交易日期") -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError as exc:
        raise _fail(path, row, field, f"日期应为 YYYYMMDD：“{text}”") from exc


def _by(lines: Iterable[BankLine], key) -> dict[str, list[BankLine]]:
    groups: dict[str, list[BankLine]] = defaultdict(list)
    for line in lines:
        groups[key(line)].append(line)
    return groups


def write_bank_files(
    out_dir: Path, bank_code: str, bank_name: str, fmt: str, lines: Iterable[BankLine], fiscal_year: int
) -> list[Path]:
    """One daily list per pay date and one reconciliation file per month, in this bank's layout."""
    if fmt not in FORMATS:
        raise ValueError(f"未知的银行文件格式：{fmt}")
    folder = out_dir / bank_code
    folder.mkdir(parents=True, exist_ok=True)
    writer = _WRITERS[fmt]
    ordered = sorted(lines, key=lambda line: (line.pay_date, line.agent_business_no))
    paths = []
    for day, group in sorted(_by(ordered, lambda line: line.pay_date.strftime("%Y%m%d")).items()):
        paths.append(writer(folder, bank_code, bank_name, "daily", day, group))
    for month, group in sorted(_by(ordered, lambda line: line.pay_date.strftime("%Y%m")).items()):
        paths.append(writer(folder, bank_code, bank_name, "monthly", month, group))
    return paths


def read_bank_file(path: Path) -> tuple[str, list[BankLine]]:
    """(kind, lines) where kind is 'daily' or 'monthly'; the file's own totals are checked against its lines."""
    suffix = path.suffix.lower()
    reader = {".csv": _read_csv, ".xlsx": _read_xlsx, ".txt": _read_fixed, ".xml": _read_xml}.get(suffix)
    if reader is None:
        raise BankFileError(f"{path.name}：无法识别的银行文件类型")
    return reader(path)


def _status(text: str, path: Path, row: int) -> str:
    if text not in STATUSES:
        raise _fail(path, row, "交易状态", f"应为 {'、'.join(STATUSES)}：“{text}”")
    return text


def _kind_name(kind: str) -> str:
    return "支付清单" if kind == "daily" else "对账单"


def _check_total(path: Path, row: int, lines: list[BankLine], count: int, total: Decimal) -> None:
    if count != len(lines):
        raise _fail(path, row, "笔数", f"合计 {count} 笔与明细 {len(lines)} 笔不符")
    if total != sum((line.amount for line in lines), Decimal(0)):
        raise _fail(path, row, "金额", f"合计 {total} 与明细之和不符")


# --- CSV (GBK) -------------------------------------------------------------------------------------------------
CSV_HEADER = [
    "交易日期",
    "支付凭证号",
    "银行流水号",
    "付款账号",
    "付款户名",
    "收款账号",
    "收款户名",
    "金额",
    "用途",
    "区划代码",
    "交易状态",
    "退票原因",
]


def _write_csv(folder, bank_code, bank_name, kind, stamp, lines) -> Path:
    path = folder / f"{bank_code}_{_kind_name(kind)}_{stamp}.csv"
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow(CSV_HEADER)
    for line in lines:
        out.writerow(
            [
                line.pay_date.strftime("%Y%m%d"),
                line.pay_cert_no,
                line.agent_business_no,
                line.payer_acct_no,
                line.payer_acct_name,
                line.payee_acct_no,
                line.payee_acct_name,
                f"{line.amount:.2f}",
                line.summary,
                line.mof_div_code,
                line.status,
                line.return_reason,
            ]
        )
    total = sum((line.amount for line in lines), Decimal(0))
    out.writerow(["合计", len(lines), "", "", "", "", "", f"{total:.2f}", "", "", "", ""])
    path.write_bytes(buffer.getvalue().encode("gbk"))
    return path


def _read_csv(path: Path) -> tuple[str, list[BankLine]]:
    bank_code = path.name.split("_")[0]
    kind = "monthly" if "对账单" in path.name else "daily"
    try:
        text = path.read_bytes().decode("gbk")
    except UnicodeDecodeError as exc:
        raise BankFileError(f"{path.name}：不是 GBK 编码") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != CSV_HEADER:
        raise _fail(path, 1, "表头", "与约定的列不符")
    lines = []
    for number, row in enumerate(rows[1:], start=2):
        if row and row[0] == "合计":
            try:
                count = int(row[1])
            except ValueError as exc:
                raise _fail(path, number, "笔数", f"不是整数：“{row[1]}”") from exc
            _check_total(path, number, lines, count, _amount(row[7], path, number))
            return kind, lines
        if len(row) != len(CSV_HEADER):
            raise _fail(path, number, "列数", f"应为 {len(CSV_HEADER)} 列，实为 {len(row)} 列")
        lines.append(
            BankLine(
                bank_code,
                row[1],
                row[2],
                _day(row[0], path, number),
                _amount(row[7], path, number),
                row[3],
                row[4],
                row[5],
                row[6],
                row[9],
                row[8],
                _status(row[10], path, number),
                row[11],
            )
        )
    raise _fail(path, len(rows) + 1, "合计", "缺少合计行")


# --- Excel -----------------------------------------------------------------------------------------------------
def _write_xlsx(folder, bank_code, bank_name, kind, stamp, lines) -> Path:
    from openpyxl import Workbook

    path = folder / f"{bank_code}_{_kind_name(kind)}_{stamp}.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.title = "对账单" if kind == "monthly" else "支付明细"
    sheet.append([f"{bank_name}财政零余额账户{'月度对账单' if kind == 'monthly' else '支付明细'}（{stamp}）"])
    sheet.append([*CSV_HEADER[:7], "金额(元)", *CSV_HEADER[8:]])
    for line in lines:
        sheet.append(
            [
                line.pay_date,
                line.pay_cert_no,
                line.agent_business_no,
                line.payer_acct_no,
                line.payer_acct_name,
                line.payee_acct_no,
                line.payee_acct_name,
                float(line.amount),
                line.summary,
                line.mof_div_code,
                line.status,
                line.return_reason or None,
            ]
        )
        sheet.cell(sheet.max_row, 1).number_format = "yyyy-mm-dd"
    total = sum((line.amount for line in lines), Decimal(0))
    sheet.append(["合计", len(lines), None, None, None, None, None, float(total)])
    book.save(path)
    return path


def _at(row: tuple, index: int):
    return row[index] if index < len(row) else None


def _read_xlsx(path: Path) -> tuple[str, list[BankLine]]:
    from openpyxl import load_workbook

    bank_code = path.name.split("_")[0]
    book = load_workbook(path, read_only=True)
    sheet = book.worksheets[0]
    kind = "monthly" if sheet.title == "对账单" else "daily"
    lines = []
    for number, row in enumerate(sheet.iter_rows(min_row=3, values_only=True), start=3):
        if row[0] == "合计":
            _check_total(path, number, lines, int(row[1]), _amount(str(row[7]), path, number))
            book.close()
            return kind, lines
        when = row[0]
        if not isinstance(when, datetime | date):
            raise _fail(path, number, "交易日期", f"不是日期：“{when}”")
        day = when.date() if isinstance(when, datetime) else when
        lines.append(
            BankLine(
                bank_code,
                str(row[1]),
                str(row[2]),
                day,
                _amount(str(row[7]), path, number),
                str(row[3]),
                str(row[4]),
                str(row[5]),
                str(row[6]),
                str(row[9]),
                str(row[8] or ""),
                _status(str(_at(row, 10) or ""), path, number),
                str(_at(row, 11) or ""),
            )
        )
    book.close()
    raise _fail(path, number + 1 if lines else 3, "合计", "缺少合计行")


# --- fixed width (GBK, widths in bytes) ---------------------------------------------------------------------------
FIXED = [
    ("pay_date", 8),
    ("pay_cert_no", 20),
    ("agent_business_no", 32),
    ("payer_acct_no", 20),
    ("payer_acct_name", 60),
    ("payee_acct_no", 20),
    ("payee_acct_name", 60),
    ("amount", 15),
    ("mof_div_code", 9),
    ("summary", 60),
    ("status", 2),
    ("return_reason", 40),
]
# The fixed-width layout writes the outcome as a code (the shipped definition's status_map reads it back).
FIXED_STATUS = {"成功": "00", "失败": "01", "退票": "02"}
FIELD_LABELS = {
    "pay_date": "交易日期",
    "pay_cert_no": "支付凭证号",
    "agent_business_no": "银行流水号",
    "payer_acct_no": "付款账号",
    "payer_acct_name": "付款户名",
    "payee_acct_no": "收款账号",
    "payee_acct_name": "收款户名",
    "amount": "金额",
    "mof_div_code": "区划代码",
    "summary": "用途",
    "status": "交易状态",
    "return_reason": "退票原因",
}
RECORD_BYTES = 2 + sum(w for _, w in FIXED)


def _pad(text: str, width: int) -> bytes:
    raw = text.encode("gbk")
    while len(raw) > width:  # cut whole characters, never half of a GBK pair
        text = text[:-1]
        raw = text.encode("gbk")
    return raw + b" " * (width - len(raw))


def _write_fixed(folder, bank_code, bank_name, kind, stamp, lines) -> Path:
    path = folder / f"{bank_code}_{'ZFQD' if kind == 'daily' else 'DZD'}_{stamp}.txt"
    records = [b"H|" + _pad(f"{bank_code}{stamp}{kind.upper()}", RECORD_BYTES - 2)]
    for line in lines:
        values = {
            "pay_date": line.pay_date.strftime("%Y%m%d"),
            "amount": f"{int(line.amount * 100):015d}",
            "status": FIXED_STATUS[line.status],
            **{
                name: getattr(line, name) for name, _ in FIXED if name not in ("pay_date", "amount", "status")
            },
        }
        records.append(b"D|" + b"".join(_pad(values[name], width) for name, width in FIXED))
    total = sum((line.amount for line in lines), Decimal(0))
    records.append(b"T|" + _pad(f"{len(lines):010d}{int(total * 100):018d}", RECORD_BYTES - 2))
    path.write_bytes(b"\r\n".join(records) + b"\r\n")
    return path


def _read_fixed(path: Path) -> tuple[str, list[BankLine]]:
    bank_code = path.name.split("_")[0]
    kind = "monthly" if "_DZD_" in path.name else "daily"
    lines = []
    for number, record in enumerate(path.read_bytes().split(b"\r\n"), start=1):
        if not record:
            continue
        if len(record) != RECORD_BYTES:
            raise _fail(path, number, "记录长度", f"应为 {RECORD_BYTES} 字节，实为 {len(record)} 字节")
        tag, body = record[:2], record[2:]
        if tag == b"T|":
            text = body.decode("gbk")
            count, fen = text[:10], text[10:28]
            if not (count.isdigit() and fen.isdigit()):
                raise _fail(path, number, "合计", "笔数或金额不是数字")
            _check_total(path, number, lines, int(count), (Decimal(int(fen)) / 100).quantize(CENT))
            return kind, lines
        if tag != b"D|":
            continue
        values, offset = {}, 0
        for name, width in FIXED:
            try:
                values[name] = body[offset : offset + width].decode("gbk").rstrip(" ")
            except UnicodeDecodeError as exc:
                raise _fail(path, number, FIELD_LABELS[name], "不是 GBK 文字（字段被截断）") from exc
            offset += width
        if not values["amount"].isdigit():
            raise _fail(path, number, "金额", f"应为以分计的数字：“{values['amount']}”")
        status = {code: name for name, code in FIXED_STATUS.items()}.get(values["status"])
        if status is None:
            raise _fail(
                path, number, "交易状态", f"应为 {'、'.join(FIXED_STATUS.values())}：“{values['status']}”"
            )
        lines.append(
            BankLine(
                bank_code,
                values["pay_cert_no"],
                values["agent_business_no"],
                _day(values["pay_date"], path, number),
                (Decimal(int(values["amount"])) / 100).quantize(CENT),
                values["payer_acct_no"],
                values["payer_acct_name"],
                values["payee_acct_no"],
                values["payee_acct_name"],
                values["mof_div_code"],
                values["summary"],
                status,
                values["return_reason"],
            )
        )
    raise _fail(path, number, "尾记录", "缺少 T 尾记录")


# --- XML voucher style (GBK) -------------------------------------------------------------------------------------
def _xml_bytes(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="GBK"?>\n' + ET.tostring(root, encoding="unicode").encode("gbk")


def _write_xml(folder, bank_code, bank_name, kind, stamp, lines) -> Path:
    path = folder / f"{bank_code}_{_kind_name(kind)}_{stamp}.xml"
    root = ET.Element("MOF", {"BankCode": bank_code, "BankName": bank_name})
    vouchers = ET.SubElement(root, "VoucherBody", {"VtCode": VT_MONTHLY if kind == "monthly" else VT_DAILY})
    for line in lines:
        v = ET.SubElement(vouchers, "Voucher")
        for tag, value in (
            ("AdmDivCode", line.mof_div_code),
            ("StYear", str(line.pay_date.year)),
            ("VtCode", VT_DAILY),
            ("VouDate", line.pay_date.strftime("%Y%m%d")),
            ("VoucherNo", line.pay_cert_no),
            ("AgentBusinessNo", line.agent_business_no),
            ("PayAcctNo", line.payer_acct_no),
            ("PayAcctName", line.payer_acct_name),
            ("PayeeAcctNo", line.payee_acct_no),
            ("PayeeAcctName", line.payee_acct_name),
            ("PayAmt", f"{line.amount:.2f}"),
            ("Remark", line.summary),
            ("PayStatus", line.status),
            ("ReturnReason", line.return_reason),
        ):
            ET.SubElement(v, tag).text = value
    total = sum((line.amount for line in lines), Decimal(0))
    summary = ET.SubElement(root, "Summary")
    ET.SubElement(summary, "AllNum").text = str(len(lines))
    ET.SubElement(summary, "AllAmt").text = f"{total:.2f}"
    path.write_bytes(_xml_bytes(root))
    return path


PROLOG = re.compile(rb'^\s*<\?xml[^>]*?encoding=["\']([A-Za-z0-9_-]+)["\'][^>]*\?>')


def parse_xml(raw: bytes) -> ET.Element:
    """Parse XML declared as GBK (expat reads no multi-byte encodings): decode by the prolog, then parse text."""
    match = PROLOG.match(raw)
    encoding = match.group(1).decode() if match else "utf-8"
    text = raw[match.end() :] if match else raw
    return fromstring(text.decode(encoding))


def _read_xml(path: Path) -> tuple[str, list[BankLine]]:
    try:
        root = parse_xml(path.read_bytes())
    except ParseError as exc:
        raise _fail(path, exc.position[0], "XML", f"格式错误：{exc}") from exc
    if root.tag == "PBOC":
        raise BankFileError(f"{path.name}：这是人民银行清算文件，请用 read_pboc_clearing 读取")
    body = root.find("VoucherBody")
    if body is None:
        raise _fail(path, 1, "VoucherBody", "缺少凭证体")
    kind = "monthly" if body.get("VtCode") == VT_MONTHLY else "daily"
    bank_code = root.get("BankCode", "")
    lines = []
    for number, v in enumerate(body.findall("Voucher"), start=1):

        def get(tag: str, v=v, number=number) -> str:
            node = v.find(tag)
            if node is None:
                raise _fail(path, number, tag, "缺少该元素（第几个 Voucher）")
            return node.text or ""

        lines.append(
            BankLine(
                bank_code,
                get("VoucherNo"),
                get("AgentBusinessNo"),
                _day(get("VouDate"), path, number),
                _amount(get("PayAmt"), path, number, "PayAmt"),
                get("PayAcctNo"),
                get("PayAcctName"),
                get("PayeeAcctNo"),
                get("PayeeAcctName"),
                get("AdmDivCode"),
                get("Remark"),
                _status(get("PayStatus"), path, number),
                get("ReturnReason"),
            )
        )
    summary = root.find("Summary")
    if summary is None:
        raise _fail(path, len(lines) + 1, "Summary", "缺少汇总")
    _check_total(
        path,
        len(lines) + 1,
        lines,
        int(summary.findtext("AllNum", "-1")),
        _amount(summary.findtext("AllAmt", ""), path, len(lines) + 1, "AllAmt"),
    )
    return kind, lines


def write_pboc_clearing(out_dir: Path, totals: Iterable[ClearingTotal], fiscal_year: int) -> Path:
    folder = out_dir / "pboc"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"clearing-{fiscal_year}.xml"
    root = ET.Element("PBOC", {"StYear": str(fiscal_year), "VtCode": "3209"})
    for t in totals:
        record = ET.SubElement(root, "Clearing")
        for tag, value in (
            ("BankCode", t.bank_code),
            ("Month", t.month),
            ("AllNum", str(t.count)),
            ("AllAmt", f"{t.amount:.2f}"),
        ):
            ET.SubElement(record, tag).text = value
    path.write_bytes(_xml_bytes(root))
    return path


def read_pboc_clearing(path: Path) -> list[ClearingTotal]:
    root = parse_xml(path.read_bytes())
    result = []
    for number, record in enumerate(root.findall("Clearing"), start=1):
        try:
            count = int(record.findtext("AllNum", ""))
        except ValueError as exc:
            raise _fail(path, number, "AllNum", "不是整数") from exc
        result.append(
            ClearingTotal(
                record.findtext("BankCode", ""),
                record.findtext("Month", ""),
                count,
                _amount(record.findtext("AllAmt", ""), path, number, "AllAmt"),
            )
        )
    return result


_WRITERS = {"csv_gbk": _write_csv, "xlsx": _write_xlsx, "fixed_width": _write_fixed, "xml_gbk": _write_xml}
