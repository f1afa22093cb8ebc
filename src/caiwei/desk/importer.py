"""Importing tickets kept so far in spreadsheets 工单导入 (CSV in UTF-8 or GBK, or Excel): all rows or none."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

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
CHANNELS = {label: value for value, label in Ticket.Channel.choices}
STATUSES = {label: value for value, label in flow.STATUS_LABELS.items()}


def read_rows(path: Path) -> list[dict[str, str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        rows = [
            [
                "" if v is None else (v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else str(v))
                for v in r
            ]
            for r in book.worksheets[0].iter_rows(values_only=True)
        ]
        book.close()
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gbk")
        rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValidationError(f"{path.name}：文件为空")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValidationError(f"{path.name}：缺少列 {'、'.join(missing)}")
    return [dict(zip(header, (v.strip() for v in row), strict=False)) for row in rows[1:] if any(row)]


def import_tickets(user, path: Path) -> int:
    """Validate every row first; write nothing unless all are good. Returns the number imported."""
    rows = read_rows(path)
    regions = {r.code: r for r in visible_regions(user)}
    errors, prepared = [], []
    for number, row in enumerate(rows, start=2):

        def bad(field: str, problem: str, number=number) -> None:
            errors.append(f"第 {number} 行“{field}”：{problem}")

        for column in REQUIRED:
            if not row.get(column):
                bad(column, "不能为空")
        region = regions.get(row.get("区划代码", ""))
        if row.get("区划代码") and region is None:
            known = Region.objects.filter(code=row["区划代码"]).exists()
            bad("区划代码", "不在您的授权区划内" if known else f"区划代码“{row['区划代码']}”不存在")
        try:
            opened = timezone.make_aware(datetime.strptime(row.get("受理时间", ""), "%Y-%m-%d %H:%M"))
        except ValueError:
            opened = None
            if row.get("受理时间"):
                bad("受理时间", f"“{row['受理时间']}”格式应为 YYYY-MM-DD HH:MM")
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
                title=row["标题"][:120],
                description=row.get("问题描述") or row["标题"],
                requester_name=row["联系人"][:60],
                requester_org=row.get("单位", "")[:120],
                requester_phone=row.get("电话", "")[:30],
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
