"""Importing tickets kept so far in spreadsheets 工单导入 (CSV in UTF-8 or GBK, or Excel): all rows or none."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from caiwei.inputs import text_problem
from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from . import flow, services
from .models import SYSTEMS, Ticket
from .sla import SEVERITIES, TYPES

COLUMNS = {
    "区划代码": "region",
    "受理时间": "opened_at",
    "渠道": "channel",
    "系统": "system",
    "类型": "ticket_type",
    "严重程度": "severity",
    "标题": "title",
    "问题描述": "description",
    "联系人": "requester_name",
    "单位": "requester_org",
    "电话": "requester_phone",
    "状态": "status",
}
REQUIRED = ("区划代码", "受理时间", "系统", "类型", "标题", "联系人")
MAX_MB = 10
# The longest value each column may hold (the ticket's field lengths): longer is an error, never cut short.
LIMITS = {"标题": 120, "联系人": 60, "单位": 120, "电话": 30, "问题描述": 10000}
MULTILINE = ("问题描述",)
EARLIEST = datetime(2000, 1, 1)
# A cell a spreadsheet would run: =…, @…, or +/- followed by more than a phone number's characters.
FORMULA = re.compile(r"^(?:[=@]|[+\-](?![\d\s()\-+]*$))")
PHONE = re.compile(r"^[\d\s()（）+\-#*/,，、;；转分机]*$")
CHANNELS = {label: value for value, label in Ticket.Channel.choices}
STATUSES = {label: value for value, label in flow.STATUS_LABELS.items()}


def _fail(path: Path, problem: str) -> ValidationError:
    return ValidationError(f"{path.name}：{problem}")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sheet_rows(path: Path) -> list[list[str]]:
    """The rows of the one worksheet whose first row is the ticket header (formulas read as written)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=False)
        try:
            sheets = {
                ws.title: [[_cell(v) for v in r] for r in ws.iter_rows(values_only=True)] for ws in book
            }
        finally:
            book.close()
    except Exception as exc:  # any failure to read an uploaded workbook means it is not one
        raise _fail(path, "不是有效的 Excel 文件（.xlsx），请用 Excel 另存为 .xlsx 后再导入") from exc
    filled = {t: [r for r in rows if any(c.strip() for c in r)] for t, rows in sheets.items()}
    if not any(filled.values()):
        raise _fail(path, "文件为空")
    found = [
        t for t, rows in filled.items() if rows and all(c in [h.strip() for h in rows[0]] for c in REQUIRED)
    ]
    if not found:
        raise _fail(
            path, f"没有找到工单表头（{'、'.join(REQUIRED)}）所在的工作表（工作表：{'、'.join(sheets)}）"
        )
    if len(found) > 1:
        raise _fail(path, f"多个工作表都有工单：{'、'.join(found)}，请合并到一个工作表后再导入")
    return sheets[found[0]]


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    if not raw.strip() or raw.strip() == b"\xef\xbb\xbf":
        raise _fail(path, "文件为空")
    if b"\x00" in raw:
        raise _fail(path, "文件编码无法识别（含空字符，可能是 UTF-16），请另存为 UTF-8 或 GBK 编码的 CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gbk")
        except UnicodeDecodeError:
            raise _fail(path, "文件编码无法识别，请另存为 UTF-8 或 GBK 编码的 CSV") from None
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        limit = "field larger than field limit" in str(exc)
        problem = f"单元格超过 {csv.field_size_limit()} 个字符" if limit else "CSV 格式错误（引号不成对？）"
        raise _fail(path, f"第 {len(rows) + 1} 行：{problem}") from None
    return rows


def read_rows(path: Path) -> list[dict[str, str]]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise _fail(path, "只能导入 .csv 或 .xlsx 文件（Excel 97-2003 的 .xls 请另存为 .xlsx）")
    if path.stat().st_size > MAX_MB * 1024 * 1024:
        raise _fail(path, f"文件大小 {path.stat().st_size / 1024 / 1024:.1f} MB，超过上限 {MAX_MB} MB")
    rows = _sheet_rows(path) if suffix == ".xlsx" else _csv_rows(path)
    if not rows:
        raise _fail(path, "文件为空")
    header = [h.strip() for h in rows[0]]
    problems = []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(f"缺少列 {'、'.join(missing)}")
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        problems.append(f"列 {'、'.join(repeated)} 重复")
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        problems.append(f"未知的列 {'、'.join(unknown)}（可用的列：{'、'.join(COLUMNS)}）")
    if problems:
        raise _fail(path, "；".join(problems))
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        extra = [c for c in row[len(header) :] if c.strip()]
        if extra:
            raise _fail(path, f"第 {number} 行有 {len(header) + len(extra)} 列，多于表头的 {len(header)} 列")
        cells = dict(zip(header, (v.strip() for v in row), strict=False))
        cells["__row__"] = str(number)
        out.append(cells)
    if not out:
        raise _fail(path, "没有数据行")
    return out


def import_tickets(user, path: Path) -> int:
    """Validate every row first; write nothing unless all are good. Returns the number imported."""
    rows = read_rows(path)
    regions = {r.code: r for r in visible_regions(user)}
    errors, prepared, seen = [], [], {}
    now = timezone.now()
    for row in rows:
        number = int(row.pop("__row__"))

        def bad(field: str, problem: str, number=number) -> None:
            errors.append(f"{path.name} 第 {number} 行“{field}”：{problem}")

        for column, value in row.items():
            problem = text_problem(value, multiline=column in MULTILINE)
            if problem:
                bad(column, problem)
            elif FORMULA.match(value):
                bad(column, f"“{value[:20]}”是公式，请粘贴为数值或去掉开头的符号")
            elif column in LIMITS and len(value) > LIMITS[column]:
                bad(column, f"长 {len(value)} 个字符，超过 {LIMITS[column]} 个字符的上限")
        for column in REQUIRED:
            if not row.get(column):
                bad(column, "不能为空")
        if row.get("电话") and not PHONE.match(row["电话"]):
            bad("电话", f"“{row['电话']}”不是电话号码")
        region = regions.get(row.get("区划代码", ""))
        if row.get("区划代码") and region is None:
            known = Region.objects.filter(code=row["区划代码"][:20]).exists()
            bad("区划代码", "不在您的授权区划内" if known else f"区划代码“{row['区划代码']}”不存在")
        try:
            opened = timezone.make_aware(datetime.strptime(row.get("受理时间", ""), "%Y-%m-%d %H:%M"))
        except ValueError:
            opened = None
            if row.get("受理时间"):
                bad("受理时间", f"“{row['受理时间']}”格式应为 YYYY-MM-DD HH:MM")
        if opened is not None and not timezone.make_aware(EARLIEST) <= opened <= now:
            bad("受理时间", f"“{row['受理时间']}”应在 2000 年之后、不晚于现在")
            opened = None
        checks = [
            ("系统", SYSTEMS),
            ("类型", TYPES),
            ("严重程度", SEVERITIES),
            ("渠道", CHANNELS),
            ("状态", STATUSES),
        ]
        for column, allowed in checks:
            if row.get(column) and row[column] not in allowed:
                bad(column, f"“{row[column]}”不是可选值（{'、'.join(allowed)}）")
        if region is not None and opened is not None and row.get("标题") and row.get("联系人"):
            key = (region.pk, opened, row["标题"], row["联系人"])
            if key in seen:
                bad("标题", f"与第 {seen[key]} 行重复（同一区划、受理时间、标题与联系人）")
            seen.setdefault(key, number)
            twin = Ticket.objects.filter(
                region=region, opened_at=opened, title=row["标题"], requester_name=row["联系人"]
            ).first()
            if twin is not None:
                bad("标题", f"与已有工单 {twin.number} 重复（已导入过？）")
        prepared.append((row, region, opened))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        for row, region, opened in prepared:
            ticket = services.create_ticket(
                user,
                region=region,
                system=row["系统"],
                ticket_type=row["类型"],
                severity=row.get("严重程度") or "一般",
                channel=CHANNELS.get(row.get("渠道", ""), Ticket.Channel.HOTLINE),
                title=row["标题"],
                description=row.get("问题描述") or row["标题"],
                requester_name=row["联系人"],
                requester_org=row.get("单位", ""),
                requester_phone=row.get("电话", ""),
            )
            status = STATUSES.get(row.get("状态", ""), flow.NEW)
            Ticket.objects.filter(pk=ticket.pk).update(
                opened_at=opened,
                status=status,
                closed_at=opened if status == flow.CLOSED else None,
                resolved_at=opened if status in (flow.RESOLVED, flow.CLOSED) else None,
            )
            ticket.refresh_from_db()
            services.refresh_due(ticket)
    return len(prepared)
