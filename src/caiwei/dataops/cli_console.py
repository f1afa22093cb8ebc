"""`caiwei data query --target <database id> --sql … --user <账号> [--format json|table] [--ticket 工单号]`: one
console query from the command line, as a named user (password from CAIWEI_PASSWORD or a prompt), under the same
grant, review, read-only session, masking and log as the page."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

ACTIONS: tuple[str, ...] = ("query",)


def add_arguments(sub) -> None:
    query = sub.add_parser("query", help="在已授权的财政库上执行一条只读查询（按列分级脱敏，留有查询记录）")
    query.add_argument("--target", required=True, type=int, help="数据库编号（登记的目标数据库）")
    query.add_argument("--sql", required=True, help="一条只读查询，使用逻辑表名与列名")
    query.add_argument("--user", required=True, help="以此账号的身份与查询授权执行")
    query.add_argument("--ticket", default="", help="关联的工单号（可选）")
    query.add_argument("--format", choices=("table", "json"), default="table", help="输出格式（默认 table）")


def _table(columns: list[str], rows: list[list]) -> str:
    def cell(v):
        return "" if v is None else str(v)

    widths = [max([len(c)] + [len(cell(r[i])) for r in rows]) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(cell(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def handle(command, options) -> None:
    from caiwei.accounts.cli import authenticate_actor
    from caiwei.accounts.roles import Capability
    from caiwei.desk.services import visible_tickets

    from . import services_console as services

    with authenticate_actor(options["user"], Capability.DATA_QUERY) as user:
        database = services.query_databases(user).filter(pk=options["target"]).first()
        if database is None:
            raise CommandError(f"{options['user']} 对数据库 {options['target']} 没有有效的查询授权")
        ticket = None
        if options.get("ticket"):
            ticket = visible_tickets(user).filter(number=options["ticket"]).first()
            if ticket is None:
                raise CommandError(f"工单 {options['ticket']} 不存在或不在 {options['user']} 的可见范围内")
        try:
            log, result, refusal = services.run_query(user, database, options["sql"], ticket=ticket)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("；".join(getattr(exc, "messages", [str(exc)]))) from exc
    if options["format"] == "json":
        out = {
            "log": log.pk,
            "refusal": refusal,
            "error": result.error if result else "",
            "columns": result.columns if result else [],
            "rows": result.rows if result else [],
            "masked_columns": log.masked_columns,
            "truncated": bool(result and result.truncated),
            "duration_ms": log.duration_ms,
        }
        command.stdout.write(json.dumps(out, ensure_ascii=False, default=str))
        if refusal or (result and result.error):
            raise CommandError(refusal or result.error)
        return
    if refusal:
        raise CommandError(f"查询被拒绝：{refusal}（查询记录 #{log.pk}）")
    if result.error:
        raise CommandError(f"{result.error}（查询记录 #{log.pk}）")
    command.stdout.write(_table(result.columns, result.rows))
    tail = f"共 {len(result.rows)} 行，耗时 {result.ms} 毫秒，查询记录 #{log.pk}"
    if log.masked_columns:
        tail += f"；脱敏列：{'、'.join(log.masked_columns)}"
    if result.truncated:
        tail += "；结果已截断"
    command.stdout.write(tail)
