"""查询台 over HTTP (/api/data/query/…): run a query (reviewed, read-only, masked, logged), the history, grants,
column classification and export requests. The same services and permissions as the pages."""

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict, Field

from caiwei.accounts.models import User
from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.checks.services import visible_databases
from caiwei.desk.services import visible_tickets
from caiwei.inputs import Line, Text

from . import services_console as services
from .models_console import QueryExport, QueryGrant, QueryLog

router = Router(tags=["数据运维"])
ID = Path(..., gt=0, le=2**63 - 1)


def _log_out(log: QueryLog, user=None) -> dict[str, Any]:
    return {
        "id": log.pk,
        "user": log.user.username,
        "database": log.database_id,
        "database_name": str(log.database),
        "sql": services.shown_sql(log, user),
        "ticket": log.ticket.number if log.ticket_id else None,
        "status": log.status,
        "rows": log.rows,
        "truncated": log.truncated,
        "duration_ms": log.duration_ms,
        "masked_columns": log.masked_columns,
        "refusal": log.refusal,
        "error": log.error,
        "created_at": log.created_at,
    }


def _grant_out(g: QueryGrant) -> dict[str, Any]:
    return {
        "id": g.pk,
        "user": g.user.username,
        "database": g.database_id,
        "database_name": str(g.database),
        "tables": g.tables,
        "row_limit": g.row_limit,
        "timeout_s": g.timeout_s,
        "valid_until": g.valid_until,
        "reason": g.reason,
        "granted_by": g.granted_by.username if g.granted_by_id else None,
        "created_at": g.created_at,
        "revoked_at": g.revoked_at,
        "active": g.active,
    }


def _export_out(e: QueryExport) -> dict[str, Any]:
    return {
        "id": e.pk,
        "log": e.log_id,
        "requested_by": e.requested_by.username,
        "reason": e.reason,
        "status": e.status,
        "status_label": e.get_status_display(),
        "decided_by": e.decided_by.username if e.decided_by_id else None,
        "decided_at": e.decided_at,
        "note": e.note,
        "downloads": e.downloads,
        "created_at": e.created_at,
    }


class RunIn(Schema):
    model_config = ConfigDict(extra="forbid")
    database: int = Field(..., gt=0, le=2**63 - 1, description="数据库编号（须有有效的查询授权）")
    sql: Text(100_000, required=True) = Field(..., description="一条只读查询，逻辑表名与列名")
    ticket: Line(20) = Field("", description="关联的工单号（可选）")


@router.post(
    "/run", summary="执行一条只读查询：先审查（拒绝时给出原因），再在只读会话中执行，结果按列分级脱敏"
)
def run(request, data: RunIn):
    user = request.user
    ensure(user, Capability.DATA_QUERY, "api:data.query.run")
    database = services.query_databases(user).filter(pk=data.database).first()
    if database is None:
        raise ValidationError({"database": f"您对数据库 {data.database} 没有有效的查询授权"})
    ticket = None
    if data.ticket:
        ticket = visible_tickets(user).filter(number=data.ticket).first()
        if ticket is None:
            raise ValidationError({"ticket": f"工单 {data.ticket} 不存在或不在您的可见范围内"})
    log, result, refusal = services.run_query(user, database, data.sql, ticket=ticket)
    out = _log_out(log, user) | {"columns": [], "rows": [], "masked_cells": []}
    if result is not None:
        out.update(
            columns=result.columns,
            rows=result.rows,
            masked_column_positions=result.masked_columns,
            masked_cells=[list(c) for c in result.masked_cells],
        )
    return out


@router.get("/history", summary="查询记录（按授权区划；含被拒绝的查询）")
def history(
    request, mine: bool = Query(False, description="只看本人的"), limit: int = Query(100, ge=1, le=1000)
):
    ensure(request.user, Capability.DATA_QUERY, "api:data.query.history")
    logs = services.visible_logs(request.user)
    if mine:
        logs = logs.filter(user=request.user)
    return [_log_out(log, request.user) for log in logs[:limit]]


@router.get("/grants", summary="查询授权（按授权区划）")
def grants(request, active: bool = Query(False, description="只看有效的")):
    ensure(request.user, Capability.DATA_GRANT, "api:data.query.grants")
    items = list(services.visible_grants(request.user)[:500])
    return [_grant_out(g) for g in items if g.active or not active]


class GrantIn(Schema):
    model_config = ConfigDict(extra="forbid")
    user: Line(150, required=True) = Field(..., description="被授权人用户名")
    database: int = Field(..., gt=0, le=2**63 - 1)
    tables: list[Line(64, required=True)] = Field(..., max_length=100, description="可查询的逻辑表")
    valid_until: datetime = Field(..., description="有效期至")
    row_limit: int = Field(200, ge=1, le=services.MAX_ROWS)
    timeout_s: int = Field(30, ge=1, le=services.MAX_TIMEOUT_S)
    reason: Line(200) = ""


@router.post("/grants", response={201: dict}, summary="授予查询权限（项目经理）")
def grant_new(request, data: GrantIn):
    ensure(request.user, Capability.DATA_GRANT, "api:data.query.grant_new")
    user = User.objects.filter(username=data.user).first()
    if user is None:
        raise ValidationError({"user": f"用户 {data.user} 不存在"})
    database = services.grantable_databases(request.user).filter(pk=data.database).first()
    g = services.grant(
        request.user,
        user=user,
        database=database,
        tables=data.tables,
        valid_until=data.valid_until,
        row_limit=data.row_limit,
        timeout_s=data.timeout_s,
        reason=data.reason,
    )
    return Status(201, _grant_out(g))


@router.post("/grants/{grant_id}/revoke", summary="收回查询授权")
def grant_revoke(request, grant_id: int = ID):
    ensure(request.user, Capability.DATA_GRANT, "api:data.query.grant_revoke")
    g = get_object_or_404(services.visible_grants(request.user), pk=grant_id)
    return _grant_out(services.revoke(request.user, g))


@router.get("/classifications/{database_id}", summary="一个数据库的列分级")
def classifications(request, database_id: int = ID):
    ensure(request.user, Capability.DATA_QUERY, "api:data.query.classifications")
    database = get_object_or_404(visible_databases(request.user), pk=database_id)
    services.ensure_classification(database)
    return [
        {"table": r.table, "column": r.column, "kind": r.kind, "kind_label": r.get_kind_display()}
        for r in database.column_classes.all()
    ]


class ClassIn(Schema):
    model_config = ConfigDict(extra="forbid")
    table: Line(64, required=True)
    column: Line(64, required=True)
    kind: Line(10, required=True) = Field(
        ..., description="id、account、phone、name、secret 或 none（不敏感）"
    )


@router.put("/classifications/{database_id}", summary="修改一列的分级（项目经理）")
def classification_set(request, data: ClassIn, database_id: int = ID):
    ensure(request.user, Capability.DATA_GRANT, "api:data.query.classification_set")
    database = get_object_or_404(visible_databases(request.user), pk=database_id)
    row = services.set_column_class(request.user, database, data.table, data.column, data.kind)
    return {"table": row.table, "column": row.column, "kind": row.kind, "kind_label": row.get_kind_display()}


@router.get("/exports", summary="导出申请（按授权区划）")
def exports(request):
    if not (request.user.can(Capability.DATA_QUERY) or services.may_decide_exports(request.user)):
        raise PermissionDenied("您的角色不能查看导出申请")
    return [_export_out(e) for e in services.visible_exports(request.user)[:500]]


class ExportIn(Schema):
    model_config = ConfigDict(extra="forbid")
    log: int = Field(..., gt=0, le=2**63 - 1, description="查询记录编号（本人的、已执行的查询）")
    reason: Line(200, required=True)


@router.post("/exports", response={201: dict}, summary="申请把一次查询的结果导出为 Excel（须另一人批准）")
def export_new(request, data: ExportIn):
    ensure(request.user, Capability.DATA_QUERY, "api:data.query.export_new")
    log = services.visible_logs(request.user).filter(pk=data.log).first()
    if log is None:
        raise ValidationError({"log": f"查询记录 {data.log} 不存在"})
    return Status(201, _export_out(services.request_export(request.user, log, data.reason)))


class DecideIn(Schema):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    note: Line(200) = ""


@router.post("/exports/{export_id}/decide", summary="批准或驳回导出申请（申请人以外的项目经理或财政审批人）")
def export_decide(request, data: DecideIn, export_id: int = ID):
    if not services.may_decide_exports(request.user):
        raise PermissionDenied("只有项目经理（查询授权人）或财政审批人可以审批导出")
    export = get_object_or_404(services.visible_exports(request.user), pk=export_id)
    return _export_out(services.decide_export(request.user, export, data.approve, data.note))


@router.get("/exports/{export_id}/file", summary="下载已批准的导出（重新执行查询，脱敏后写入 Excel）")
def export_file(request, export_id: int = ID):
    ensure(request.user, Capability.DATA_QUERY, "api:data.query.export_file")
    export = get_object_or_404(services.visible_exports(request.user), pk=export_id)
    try:
        name, data = services.export_workbook(request.user, export)
    except services.NotReady as exc:
        raise HttpError(409, str(exc)) from None
    response = HttpResponse(
        data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
