"""Bank file layouts as data 银行文件格式定义: one definition per bank and file kind, written in YAML by the 二线工程师,
and one streaming reader that turns any file of that layout into the normalised record shape of reconciliation.

A definition names the layout (``csv``, ``excel`` for .xlsx and legacy .xls, ``fixed`` for fixed width by byte,
``xml``), the encoding (GBK or UTF-8), where each normalised field comes from (a header text, a byte range, an
element), how dates and amounts are written, and the file's own totals (a 合计 row, a trailer record, a summary
element). ``parse_definition`` checks a definition and says what is wrong with it in Chinese; ``read`` yields the
records one by one and checks the totals at the end, so a caller that stages the records and commits only when the
reader finishes refuses a malformed file whole (``normalise`` does that into a CSV for DuckDB). Every error names
the file, the line (for Excel the row and cell), the byte offset where the layout has one, and the field.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import ParseError as XMLParseError
from xml.etree.ElementTree import XMLPullParser

import yaml

CENT = Decimal("0.01")
LAYOUTS = ("csv", "excel", "fixed", "xml")
ENCODINGS = {"gbk": "gb18030", "gb18030": "gb18030", "utf-8": "utf-8", "utf-8-sig": "utf-8-sig"}
# The normalised record of a bank line: field → (Chinese name, type).
FIELDS = {
    "pay_date": ("交易日期", "date"),
    "pay_cert_no": ("支付凭证号", "text"),
    "agent_business_no": ("银行流水号", "text"),
    "payer_acct_no": ("付款账号", "text"),
    "payer_acct_name": ("付款户名", "text"),
    "payee_acct_no": ("收款账号", "text"),
    "payee_acct_name": ("收款户名", "text"),
    "amount": ("金额", "amount"),
    "mof_div_code": ("区划代码", "text"),
    "summary": ("用途", "text"),
    "status": ("交易状态", "status"),
    "return_reason": ("退票原因", "text"),
}
REQUIRED = ("pay_date", "amount")
STATUSES = ("成功", "退票", "失败")
MAX_FIELD_CHARS = 500
MAX_LINE_BYTES = 64 * 1024


class DefinitionError(ValueError):
    """A format definition that cannot be used; the message names the key (in Chinese)."""


class FormatError(ValueError):
    """A file that does not match its format definition: file, line, byte offset, field and the problem."""

    def __init__(
        self, file: str, line: int, field: str, problem: str, offset: int | None = None, cell: str = ""
    ):
        self.file, self.line, self.field, self.problem, self.offset, self.cell = (
            file,
            line,
            field,
            problem,
            offset,
            cell,
        )
        where = f"第 {line} 行"
        if cell:
            where += f"（单元格 {cell}）"
        if offset is not None:
            where += f"（第 {offset} 字节起）"
        super().__init__(f"{file} {where}“{field}”：{problem}")

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "cell": self.cell,
            "field": self.field,
            "problem": self.problem,
            "message": str(self),
        }


@dataclass(frozen=True)
class Totals:
    """Where the file states its own count and amount: the row/record/element and the positions in it."""

    marker: str = ""  # csv/excel: text in the first column of the 合计 row; fixed: the trailer record's type
    count: object = None  # csv/excel: column number (1-based); fixed: [start, length]; xml: element path
    amount: object = None
    amount_unit: str = "元"


@dataclass(frozen=True)
class Definition:
    name: str
    layout: str
    encoding: str = "gbk"
    delimiter: str = ","
    skip_rows: int = 0  # lines (csv) or rows (excel) before the header
    header: bool = True  # csv/excel: a header row names the columns; sources are then header texts
    fields: dict = field(default_factory=dict)  # normalised field → source
    date_format: str = "%Y%m%d"
    amount_unit: str = "元"  # or 分
    record_type: tuple = ()  # fixed: [start, length] of the record type
    detail: str = ""  # fixed: the detail records' type
    record: str = ""  # xml: path of one record element from the root
    totals: Totals | None = None
    status_map: dict = field(default_factory=dict)  # bank's own status words → 成功/退票/失败
    sheet: int = 0  # excel: sheet number (0-based)

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]


def _need(data: dict, key: str, kind: type | tuple, label: str):
    if key not in data:
        raise DefinitionError(f"缺少“{label}”（{key}）")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DefinitionError(f"“{label}”（{key}）的类型不对")
    return value


def _span(value, label: str) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] < 0
        or value[1] <= 0
    ):
        raise DefinitionError(f"“{label}”应写成 [起始字节, 字节数]，起始从 0 计，字节数大于 0")
    return int(value[0]), int(value[1])


def parse_definition(data: dict | str) -> Definition:
    """A checked definition from YAML text or a mapping; DefinitionError names what is wrong."""
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"第 {mark.line + 1} 行" if mark else ""
            raise DefinitionError(f"格式定义不是合法的 YAML{where}：{getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise DefinitionError("格式定义应是键值对")
    unknown = set(data) - {f.name for f in Definition.__dataclass_fields__.values()}
    if unknown:
        raise DefinitionError(f"不认识的键：{'、'.join(sorted(map(str, unknown)))}")
    name = _need(data, "name", str, "名称").strip()
    if not name:
        raise DefinitionError("“名称”（name）不能为空")
    layout = _need(data, "layout", str, "版式")
    if layout not in LAYOUTS:
        raise DefinitionError(f"“版式”（layout）应为 {'、'.join(LAYOUTS)} 之一")
    encoding = str(data.get("encoding", "gbk")).lower()
    if encoding not in ENCODINGS:
        raise DefinitionError(f"“编码”（encoding）应为 {'、'.join(ENCODINGS)} 之一")
    fields = _need(data, "fields", dict, "字段")
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise DefinitionError(
            f"不认识的字段：{'、'.join(sorted(map(str, unknown)))}（可用：{'、'.join(FIELDS)}）"
        )
    missing = [FIELDS[f][0] for f in REQUIRED if f not in fields]
    if missing:
        raise DefinitionError(f"缺少必需的字段：{'、'.join(missing)}")
    if not ({"pay_cert_no", "agent_business_no"} & set(fields)):
        raise DefinitionError("至少要有“支付凭证号”或“银行流水号”之一，否则无法按业务号匹配")
    header = data.get("header", True)
    if not isinstance(header, bool):
        raise DefinitionError("“表头”（header）应为 true 或 false")
    for f, source in fields.items():
        label = f"字段 {FIELDS[f][0]}"
        if layout == "fixed":
            _span(source, label)
        elif layout in ("csv", "excel") and not header:
            if not isinstance(source, int) or isinstance(source, bool) or source < 1:
                raise DefinitionError(f"“{label}”在无表头时应写列号（从 1 起）")
        elif not isinstance(source, str) or not source.strip():
            raise DefinitionError(f"“{label}”应写{'表头文字' if layout != 'xml' else '元素名'}")
    delimiter = data.get("delimiter", ",")
    if layout == "csv" and (not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"'"):
        raise DefinitionError("“分隔符”（delimiter）应是一个字符，且不能是引号或换行")
    skip = data.get("skip_rows", 0)
    if not isinstance(skip, int) or isinstance(skip, bool) or not 0 <= skip <= 50:
        raise DefinitionError("“跳过行数”（skip_rows）应为 0–50 的整数")
    date_format = data.get("date_format", "%Y%m%d")
    if not isinstance(date_format, str) or "%" not in date_format:
        raise DefinitionError("“日期格式”（date_format）应写成如 %Y%m%d、%Y-%m-%d")
    for key in ("amount_unit",):
        if data.get(key, "元") not in ("元", "分"):
            raise DefinitionError("“金额单位”（amount_unit）应为 元 或 分")
    record_type, detail, record = (), "", ""
    if layout == "fixed":
        record_type = _span(_need(data, "record_type", list, "记录类型位置"), "记录类型位置")
        detail = _need(data, "detail", str, "明细记录类型")
    if layout == "xml":
        record = _need(data, "record", str, "记录元素路径").strip()
        if not re.fullmatch(r"[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*)*", record):
            raise DefinitionError("“记录元素路径”（record）应写成 元素/元素，如 VoucherBody/Voucher")
    totals = None
    if data.get("totals") is not None:
        t = data["totals"]
        if not isinstance(t, dict) or set(t) - {"marker", "count", "amount", "amount_unit"}:
            raise DefinitionError("“合计”（totals）应包含 marker、count、amount、amount_unit")
        if layout == "fixed":
            _span(t.get("count"), "合计笔数位置")
            _span(t.get("amount"), "合计金额位置")
        elif layout == "xml":
            if not all(isinstance(t.get(k), str) and t.get(k) for k in ("count", "amount")):
                raise DefinitionError("XML 的合计应写笔数与金额的元素路径")
        elif not all(isinstance(t.get(k), int) and t.get(k) >= 1 for k in ("count", "amount")):
            raise DefinitionError("合计行的笔数与金额应写列号（从 1 起）")
        if layout != "xml" and not t.get("marker"):
            raise DefinitionError("合计（totals）需要 marker：合计行首列的文字或尾记录的类型")
        if t.get("amount_unit", "元") not in ("元", "分"):
            raise DefinitionError("合计的金额单位应为 元 或 分")
        totals = Totals(
            str(t.get("marker", "")),
            tuple(t["count"]) if isinstance(t["count"], list) else t["count"],
            tuple(t["amount"]) if isinstance(t["amount"], list) else t["amount"],
            t.get("amount_unit", "元"),
        )
    status_map = data.get("status_map", {}) or {}
    if not isinstance(status_map, dict) or any(v not in STATUSES for v in status_map.values()):
        raise DefinitionError(f"“状态对照”（status_map）的值应为 {'、'.join(STATUSES)}")
    sheet = data.get("sheet", 0)
    if not isinstance(sheet, int) or isinstance(sheet, bool) or sheet < 0:
        raise DefinitionError("“工作表”（sheet）应为从 0 起的序号")
    return Definition(
        name=name,
        layout=layout,
        encoding=encoding,
        delimiter=delimiter,
        skip_rows=skip,
        header=header,
        fields={f: tuple(s) if isinstance(s, list) else s for f, s in fields.items()},
        date_format=date_format,
        amount_unit=data.get("amount_unit", "元"),
        record_type=record_type,
        detail=detail,
        record=record,
        totals=totals,
        status_map={str(k): v for k, v in status_map.items()},
        sheet=sheet,
    )


# --- values -----------------------------------------------------------------------------------------------------


@dataclass
class Record:
    """One normalised bank line and where it came from."""

    line: int
    offset: int | None
    values: dict


class _Where:
    """Where the reader is, for errors."""

    def __init__(self, file: str):
        self.file, self.line, self.offset, self.cell = file, 0, None, ""

    def fail(self, field: str, problem: str) -> FormatError:
        return FormatError(self.file, self.line, field, problem, self.offset, self.cell)


def _amount(text, unit: str, where: _Where, label: str) -> Decimal:
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = repr(text) if isinstance(text, float) else str(text)
    raw = str(text).strip().replace(",", "")
    if not re.fullmatch(r"-?\d{1,16}(\.\d{1,2})?" if unit == "元" else r"-?\d{1,18}", raw):
        shown = raw[:40]
        if unit == "分":
            raise where.fail(label, f"应为以分计的整数：“{shown}”")
        raise where.fail(label, f"不是两位小数以内的金额：“{shown}”")
    value = Decimal(raw)
    return (value / 100).quantize(CENT) if unit == "分" else value.quantize(CENT)


def _date(value, fmt: str, where: _Where, label: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        raise where.fail(
            label,
            f"不是 {fmt.replace('%Y', 'YYYY').replace('%m', 'MM').replace('%d', 'DD')} 格式的日期：“{text[:30]}”",
        ) from None


def _convert(definition: Definition, raw: dict, where: _Where, cells: dict | None = None) -> dict:
    out = {}
    for name, value in raw.items():
        label, kind = FIELDS[name]
        if cells:
            where.cell = cells[name]
        if kind == "amount":
            out[name] = _amount(value, definition.amount_unit, where, label)
        elif kind == "date":
            out[name] = _date(value, definition.date_format, where, label)
        else:
            text = "" if value is None else str(value).strip()
            if len(text) > MAX_FIELD_CHARS:
                raise where.fail(label, f"超过 {MAX_FIELD_CHARS} 个字符")
            if any(ord(c) < 32 for c in text):
                raise where.fail(label, "含有控制字符")
            if kind == "status":
                mapped = definition.status_map.get(text, text)
                if mapped not in STATUSES:
                    raise where.fail(
                        label, f"不认识的状态“{text[:20]}”（应为 {'、'.join(STATUSES)} 或在状态对照中写明）"
                    )
                text = mapped
            out[name] = text
    for name in ("pay_cert_no", "agent_business_no"):
        if (
            name in definition.fields
            and not out.get(name)
            and not out.get("agent_business_no" if name == "pay_cert_no" else "pay_cert_no")
        ):
            raise where.fail(FIELDS[name][0], "为空")
    if (
        "status" in out
        and out["status"] != "成功"
        and "return_reason" in definition.fields
        and not out.get("return_reason")
    ):
        raise where.fail(FIELDS["return_reason"][0], f"状态为{out['status']}却没有写明原因")
    return out


class _Tally:
    def __init__(self):
        self.count, self.amount = 0, Decimal(0)

    def add(self, values: dict) -> None:
        self.count += 1
        self.amount += values["amount"]

    def check(self, where: _Where, count, amount, unit: str) -> None:
        try:
            stated = int(str(count).strip())
        except ValueError:
            raise where.fail("合计笔数", f"不是整数：“{str(count)[:20]}”") from None
        total = _amount(amount, unit, where, "合计金额")
        if stated != self.count:
            raise where.fail("合计笔数", f"文件写明 {stated} 笔，明细实有 {self.count} 笔")
        if total != self.amount:
            raise where.fail("合计金额", f"文件写明 {total}，明细合计 {self.amount}")


# --- readers ----------------------------------------------------------------------------------------------------


def _lines(path: Path, where: _Where) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw line without its end) of a text file, streamed; GBK and UTF-8 never use the
    bytes of CR or LF inside a character, so splitting bytes on LF is safe."""
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if len(raw) > MAX_LINE_BYTES:
                where.line, where.offset = number, offset
                raise where.fail("行", f"超过 {MAX_LINE_BYTES} 字节，不像银行文件的一行")
            yield number, offset, raw.rstrip(b"\r\n")
            offset += len(raw)


def _decode(raw: bytes, definition: Definition, where: _Where, label: str) -> str:
    try:
        return raw.decode(definition.codec)
    except UnicodeDecodeError as exc:
        if where.offset is not None:
            where.offset += exc.start
        name = "GBK" if definition.codec == "gb18030" else definition.encoding.upper()
        raise where.fail(label, f"不是 {name} 编码的文字（第 {exc.start + 1} 个字节）") from None


def _header_index(definition: Definition, header: list[str], where: _Where) -> dict[str, int]:
    names = [h.strip().lstrip("\ufeff") for h in header]
    index = {}
    for f, source in definition.fields.items():
        if not definition.header:
            if source > len(names) and names:
                raise where.fail(FIELDS[f][0], f"定义为第 {source} 列，文件只有 {len(names)} 列")
            index[f] = source - 1
        elif source not in names:
            raise where.fail("表头", f"找不到“{source}”列（{FIELDS[f][0]}）")
        else:
            index[f] = names.index(source)
    return index


def _read_csv(definition: Definition, path: Path, where: _Where) -> Iterator[Record]:
    tally, index, width = _Tally(), None, 0
    totals = definition.totals
    lines = _lines(path, where)
    for number, offset, raw in lines:
        where.line, where.offset = number, offset
        text = _decode(raw, definition, where, "行")
        if number == 1:
            text = text.lstrip("\ufeff")
        if number <= definition.skip_rows:
            continue
        if not text.strip():
            continue
        try:
            row = next(csv.reader([text], delimiter=definition.delimiter, strict=True))
        except csv.Error as exc:
            raise where.fail("行", f"CSV 引号不配对：{exc}") from None
        if index is None:
            if definition.header:
                index = _header_index(definition, row, where)
                width = len(row)
                continue
            index, width = _header_index(definition, row, where), len(row)
        if totals and row and row[0].strip() == totals.marker:
            tally.check(where, _cell(row, totals.count), _cell(row, totals.amount), totals.amount_unit)
            for number, _offset, rest in lines:
                if rest.strip():
                    where.line, where.offset = number, _offset
                    raise where.fail("合计", "合计行之后还有内容")
            return
        if len(row) != width:
            raise where.fail("列数", f"应为 {width} 列，实为 {len(row)} 列")
        values = _convert(definition, {f: row[i] for f, i in index.items()}, where)
        tally.add(values)
        yield Record(number, offset, values)
    if index is None:
        raise where.fail("表头", "文件是空的")
    if totals:
        raise where.fail("合计", f"缺少以“{totals.marker}”开头的合计行")


def _cell(row: list, column: int):
    """The value in a 1-based column, or "" past the row's end."""
    return row[column - 1] if column - 1 < len(row) else ""


def _cell_name(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row}"


def _excel_rows(definition: Definition, path: Path, where: _Where) -> Iterator[tuple[int, list]]:
    head = path.read_bytes()[:8] if path.stat().st_size else b""
    if head.startswith(b"PK"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 — a broken xlsx raises many kinds
            raise where.fail("文件", f"不是可读的 Excel（.xlsx）文件：{type(exc).__name__}") from None
        try:
            if definition.sheet >= len(book.worksheets):
                raise where.fail("工作表", f"没有第 {definition.sheet + 1} 个工作表")
            sheet = book.worksheets[definition.sheet]
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, list(row)
        finally:
            book.close()
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        import xlrd

        try:
            book = xlrd.open_workbook(file_contents=path.read_bytes(), on_demand=True)
        except Exception as exc:  # noqa: BLE001
            raise where.fail("文件", f"不是可读的 Excel 97-2003（.xls）文件：{type(exc).__name__}") from None
        try:
            if definition.sheet >= book.nsheets:
                raise where.fail("工作表", f"没有第 {definition.sheet + 1} 个工作表")
            sheet = book.sheet_by_index(definition.sheet)
            for r in range(sheet.nrows):
                values = []
                for cell in sheet.row(r):
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        values.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                    else:
                        values.append(cell.value if cell.ctype != xlrd.XL_CELL_EMPTY else None)
                yield r + 1, values
        finally:
            book.release_resources()
    else:
        raise where.fail("文件", "不是 Excel 文件（既不是 .xlsx 也不是 .xls）")


def _excel_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _read_excel(definition: Definition, path: Path, where: _Where) -> Iterator[Record]:
    tally, index, width = _Tally(), None, 0
    totals = definition.totals
    rows = _excel_rows(definition, path, where)
    for number, row in rows:
        where.line, where.cell = number, ""
        while row and row[-1] in (None, ""):
            row.pop()
        if number <= definition.skip_rows or not row:
            continue
        if index is None:
            header = [_excel_text(v) for v in row]
            if definition.header:
                index = _header_index(definition, header, where)
                width = len(header)
                continue
            index, width = _header_index(definition, header, where), len(header)
        if totals and _excel_text(row[0]).strip() == totals.marker:
            where.cell = _cell_name(number, totals.count - 1)
            tally.check(
                where, _excel_text(_cell(row, totals.count)), _cell(row, totals.amount), totals.amount_unit
            )
            for number, rest in rows:
                if any(v not in (None, "") for v in rest):
                    where.line, where.cell = number, ""
                    raise where.fail("合计", "合计行之后还有内容")
            return
        if len(row) > width:
            raise where.fail("列数", f"应至多 {width} 列，实为 {len(row)} 列")
        raw, cells = {}, {}
        for f, i in index.items():
            value = row[i] if i < len(row) else None
            cells[f] = _cell_name(number, i)
            kind = FIELDS[f][1]
            raw[f] = (
                value if kind in ("date", "amount") and not isinstance(value, str) else _excel_text(value)
            )
            if kind == "amount" and isinstance(value, float):
                raw[f] = f"{Decimal(repr(value)).quantize(CENT)}" if round(value, 2) == value else repr(value)
        values = _convert(definition, raw, where, cells)
        where.cell = ""
        tally.add(values)
        yield Record(number, None, values)
    if index is None:
        raise where.fail("表头", "工作表是空的")
    if totals:
        raise where.fail("合计", f"缺少以“{totals.marker}”开头的合计行")


def _read_fixed(definition: Definition, path: Path, where: _Where) -> Iterator[Record]:
    tally = _Tally()
    totals = definition.totals
    start, length = definition.record_type
    spans = definition.fields
    need = max([s + n for s, n in spans.values()] + [start + length])
    lines = _lines(path, where)
    for number, offset, raw in lines:
        where.line, where.offset = number, offset
        if not raw.strip():
            continue
        kind = raw[start : start + length].decode("ascii", "replace")
        if totals and kind == totals.marker:
            count_text = _decode(raw[slice(*_cut(totals.count))], definition, where, "合计笔数")
            amount_text = _decode(raw[slice(*_cut(totals.amount))], definition, where, "合计金额")
            tally.check(where, count_text, amount_text, totals.amount_unit)
            for number, _offset, rest in lines:
                if rest.strip():
                    where.line, where.offset = number, _offset
                    raise where.fail("尾记录", "尾记录之后还有内容")
            return
        if kind != definition.detail:
            continue
        if len(raw) < need:
            raise where.fail("记录长度", f"明细记录至少应有 {need} 字节，实为 {len(raw)} 字节")
        fields = {}
        for f, (s, n) in spans.items():
            where.offset = offset + s
            fields[f] = _decode(raw[s : s + n], definition, where, FIELDS[f][0])
        where.offset = offset
        values = _convert(definition, fields, where)
        tally.add(values)
        yield Record(number, offset, values)
    if totals:
        raise where.fail("尾记录", f"缺少类型为“{totals.marker}”的尾记录")


def _cut(span) -> tuple[int, int]:
    return span[0], span[0] + span[1]


PROLOG = re.compile(rb'^\s*<\?xml[^>]*?encoding=["\']([A-Za-z0-9_-]+)["\'][^>]*\?>')


def _read_xml(definition: Definition, path: Path, where: _Where) -> Iterator[Record]:
    """Streamed: the bytes are decoded by the encoding the prolog declares (expat itself reads no GBK) and fed to a
    pull parser chunk by chunk; a DOCTYPE is refused (bank files need none; no entity tricks)."""
    tally = _Tally()
    totals = definition.totals
    with path.open("rb") as handle:
        first = handle.read(4096)
        match = PROLOG.match(first)
        encoding = match.group(1).decode().lower() if match else definition.codec
        codec = ENCODINGS.get(encoding, encoding)
        try:
            decoder = codecs.getincrementaldecoder(codec)()
        except LookupError:
            where.line = 1
            raise where.fail("XML 声明", f"不支持的编码“{encoding}”") from None
        parser = XMLPullParser(events=("start", "end"))
        stack: list = []  # open elements, root first
        number, state = 0, {"count": None, "amount": None}
        chunk = first[match.end() :] if match else first
        consumed = match.end() if match else 0
        while chunk:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                where.line, where.offset = number + 1, consumed + exc.start
                raise where.fail("XML", f"不是 {encoding.upper()} 编码的文字") from None
            if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
                where.line = number + 1
                raise where.fail("XML", "含有 DOCTYPE/ENTITY 声明，银行文件不应有，拒绝读取")
            try:
                parser.feed(text)
                for event, element in parser.read_events():
                    if event == "start":
                        stack.append(element)
                        continue
                    path_now = "/".join(e.tag for e in stack[1:])
                    stack.pop()
                    if path_now == definition.record:
                        number += 1
                        where.line, where.offset = number, None
                        raw = {}
                        for f, tag in definition.fields.items():
                            node = element.find(tag)
                            if node is None:
                                raise where.fail(FIELDS[f][0], f"第 {number} 条记录缺少元素 <{tag}>")
                            raw[f] = node.text or ""
                        values = _convert(definition, raw, where)
                        tally.add(values)
                        stack[-1].remove(element)  # processed records do not pile up under their parent
                        yield Record(number, None, values)
                    elif totals and path_now in (totals.count, totals.amount):
                        state["count" if path_now == totals.count else "amount"] = element.text or ""
            except XMLParseError as exc:
                where.line, where.offset = number + 1, None
                raise where.fail(
                    "XML", f"格式错误（文件第 {exc.position[0]} 行第 {exc.position[1]} 列）"
                ) from None
            consumed += len(chunk)
            chunk = handle.read(1 << 16)
        try:
            parser.close()
        except XMLParseError as exc:
            where.line = number + 1
            raise where.fail("XML", f"文件不完整（文件第 {exc.position[0]} 行）") from None
    where.line, where.offset = number + 1, None
    if totals:
        if state["count"] is None or state["amount"] is None:
            raise where.fail("合计", f"缺少汇总元素 {totals.count} 或 {totals.amount}")
        tally.check(where, state["count"], state["amount"], totals.amount_unit)


READERS = {"csv": _read_csv, "excel": _read_excel, "fixed": _read_fixed, "xml": _read_xml}


def read(definition: Definition, path: Path, name: str | None = None) -> Iterator[Record]:
    """The file's records, streamed; a FormatError at the first problem. The file's totals are checked after the last
    record, so a caller must not keep what it read unless the iteration finishes."""
    where = _Where(name or path.name)
    if not path.is_file():
        raise where.fail("文件", "不存在或不是普通文件")
    yield from READERS[definition.layout](definition, path, where)


def preview(definition: Definition, path: Path, rows: int = 10, name: str | None = None) -> dict:
    """The first rows as the definition reads them, each field by its Chinese name, or the first error."""
    out = {
        "columns": [FIELDS[f][0] for f in definition.fields],
        "fields": list(definition.fields),
        "rows": [],
    }
    try:
        for record in read(definition, path, name):
            out["rows"].append({"line": record.line, **{f: _show(v) for f, v in record.values.items()}})
            if len(out["rows"]) >= rows:
                break
    except FormatError as exc:
        out["error"] = exc.as_dict()
    return out


def _show(value) -> str:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


NORMALISED = list(FIELDS)


@dataclass
class Normalised:
    path: Path
    count: int
    amount: Decimal


def normalise(
    definition: Definition, source: Path, target: Path, name: str | None = None, extra: dict | None = None
) -> Normalised:
    """Write the file's records as UTF-8 CSV (the normalised columns, then ``line``, then the ``extra`` columns) for
    DuckDB to read; all or nothing: written to a temporary file that replaces ``target`` only when the whole file
    has been read and its totals agree."""
    extra = extra or {}
    tmp = target.with_name(f".{target.name}.part")
    count, amount = 0, Decimal(0)
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow([*NORMALISED, "line", *extra])
            for record in read(definition, source, name):
                v = record.values
                out.writerow(
                    [_show(v[f]) if f in v else "" for f in NORMALISED] + [record.line, *extra.values()]
                )
                count += 1
                amount += v["amount"]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return Normalised(target, count, amount)


# --- the shipped definitions --------------------------------------------------------------------------------------

LAYOUT_DIR = Path(__file__).resolve().parent / "layouts"


def shipped() -> dict[str, Definition]:
    """The definitions that ship with Caiwei (recon/layouts/*.yaml), by file stem."""
    return {
        p.stem: parse_definition(p.read_text(encoding="utf-8")) for p in sorted(LAYOUT_DIR.glob("*.yaml"))
    }
