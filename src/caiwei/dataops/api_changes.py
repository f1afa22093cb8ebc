"""数据变更 over HTTP (/api/data/changes): create (SQL or guided fix), review without saving, submit, approve or
reject, execute (worker job), roll back (preview of conflicts, or restore), detail with images and journal. The same
services and permissions as the pages."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.inputs import Line, Text

from . import changes_services as services
from .models_changes import ChangeRequest

router = Router(tags=["数据运维"])
ID = Path(..., gt=0, le=2**63 - 1)


def _out(change: ChangeRequest, full: bool = False) -> dict[str, Any]:
    out = {
        "id": change.pk,
        "number": change.number,
        "title": change.title,
        "database": change.database_id,
        "database_name": str(change.database),
        "status": change.status,
        "status_label": change.get_status_display(),
        "status_note": change.status_note,
        "estimated_rows": change.estimated_rows,
        "author": change.author.username,
        "approver": change.approver.username if change.approver_id else None,
        "approved_at": change.approved_at,
        "window_start": change.window_start,
        "window_end": change.window_end,
        "ticket": change.ticket.number if change.ticket_id else None,
        "origin": change.origin,
        "origin_ref": change.origin_ref,
        "created_at": change.created_at,
    }
    if full:
        out.update(
            reason=change.reason,
            sql=change.sql,
            fix=change.fix,
            declares_ddl=change.declares_ddl,
            emergency_plan=change.emergency_plan,
            rollback_plan=change.rollback_plan,
            findings=change.findings,
            statements=change.plan,
            decision_note=change.decision_note,
            attempts=[
                {
                    "id": a.pk,
                    "kind": a.kind,
                    "state": a.state,
                    "state_label": a.get_state_display(),
                    "rows": a.rows,
                    "message": a.message,
                    "conflicts": a.conflicts,
                    "verification": a.verification,
                    "by": a.by.username if a.by_id else None,
                    "started_at": a.started_at,
                    "finished_at": a.finished_at,
                }
                for a in change.attempts.select_related("by")
            ],
            images=[
                {
                    "statement": img["statement"].index,
                    "table": img["statement"].table,
                    "columns": img.get("columns", []),
                    "before_total": img.get("before_total"),
                    "after_total": img.get("after_total"),
                    "rows": [
                        {
                            "key": r["key"],
                            "before": [c["before"] for c in r["cells"]],
                            "after": [c["after"] for c in r["cells"]],
                        }
                        for r in img.get("rows", [])
                    ],
                }
                for img in services.images_for_display(change)
            ],
            journal=[
                {
                    "at": j["at"],
                    "step": j["step"],
                    "label": j["label"],
                    "detail": j["detail"],
                    "attempt": j["attempt"],
                }
                for j in services.journal_for_display(change)
            ],
        )
    return out


def _change(request, change_id: int) -> ChangeRequest:
    return get_object_or_404(services.visible_changes(request.user), pk=change_id)


class FixIn(Schema):
    model_config = ConfigDict(extra="forbid")
    table: Line(120, required=True)
    column: Line(120, required=True)
    value: str | int | float | None = Field(None, description="新值；null 为空值")
    key_columns: list[Line(120)] = Field(..., min_length=1)
    keys: list[list[str | int]] = Field(
        ..., min_length=1, max_length=10000, description="主键值，每个为一个列表"
    )


class ChangeIn(Schema):
    model_config = ConfigDict(extra="forbid")
    database: int = Field(..., gt=0, le=2**63 - 1, description="目标数据库编号")
    title: Line(120, required=True)
    reason: Text(4000, required=True)
    sql: Text(200000) = Field("", description="变更 SQL；或给出 fix（引导式修复）")
    fix: FixIn | None = None
    declares_ddl: bool = False
    emergency_plan: Text(4000) = ""
    rollback_plan: Text(4000) = ""
    window_start: datetime | None = None
    window_end: datetime | None = None
    ticket: Line(20) = Field("", description="关联的数据变更工单号")


class ReviewIn(Schema):
    model_config = ConfigDict(extra="forbid")
    database: int = Field(..., gt=0, le=2**63 - 1)
    sql: Text(200000) = ""
    fix: FixIn | None = None
    declares_ddl: bool = False


def _database(request, pk: int):
    return get_object_or_404(services.change_databases(request.user), pk=pk)


def _sql_of(database, sql: str, fix: FixIn | None) -> tuple[str, dict]:
    if fix is not None and sql.strip():
        raise ValidationError({"sql": "sql 与 fix 只能给一个"})
    if fix is not None:
        spec = fix.model_dump()
        return services.fix_sql(database, spec), spec
    return sql, {}


@router.get("", summary="数据变更（按授权区划）")
def change_list(request, status: str = Query("", max_length=12), limit: int = Query(50, ge=1, le=500)):
    ensure(request.user, Capability.DATA_VIEW, "api:dataops.changes")
    qs = services.visible_changes(request.user)
    if status:
        if status not in ChangeRequest.Status.values:
            raise ValidationError({"status": f"应为 {'、'.join(ChangeRequest.Status.values)} 之一"})
        qs = qs.filter(status=status)
    return [_out(c) for c in qs[:limit]]


@router.post(
    "", response={201: dict}, summary="新建数据变更（草稿；保存前按审核规则检查，不通过则 400 并说明原因）"
)
def change_create(request, data: ChangeIn):
    ensure(request.user, Capability.DATA_CHANGE, "api:dataops.change")
    database = _database(request, data.database)
    sql, fix = _sql_of(database, data.sql, data.fix)
    ticket = None
    if data.ticket:
        from caiwei.desk.services import visible_tickets

        ticket = visible_tickets(request.user).filter(number=data.ticket).first()
        if ticket is None:
            raise ValidationError({"ticket": f"工单“{data.ticket}”不存在或不在您的授权区划内"})
    change = ChangeRequest(
        author=request.user,
        ticket=ticket,
        origin=ChangeRequest.Origin.TICKET if ticket else "",
        origin_ref=ticket.number if ticket else "",
    )
    change = services.save_change(
        request.user,
        change,
        database=database,
        title=data.title,
        reason=data.reason,
        sql=sql,
        fix=fix,
        declares_ddl=data.declares_ddl,
        emergency_plan=data.emergency_plan,
        rollback_plan=data.rollback_plan,
        window_start=data.window_start,
        window_end=data.window_end,
    )
    return Status(201, _out(change, full=True))


@router.post(
    "/review", summary="按审核规则检查 SQL（不保存）：语句类型、WHERE、单表、禁止的表、主键、估计影响行数"
)
def change_review(request, data: ReviewIn):
    ensure(request.user, Capability.DATA_CHANGE, "api:dataops.change.review")
    database = _database(request, data.database)
    sql, _ = _sql_of(database, data.sql, data.fix)
    review = services.run_review(database, sql, data.declares_ddl)
    return {
        "ok": review.ok,
        "sql": sql,
        "estimated_rows": review.estimated_rows,
        "findings": [f.as_dict() for f in review.findings],
        "statements": review.plan(),
    }


@router.get("/{change_id}", summary="一个数据变更：语句、审核意见、执行与回滚记录、前后镜像（已脱敏）、日志")
def change_detail(request, change_id: int = ID):
    ensure(request.user, Capability.DATA_VIEW, "api:dataops.change")
    return _out(_change(request, change_id), full=True)


@router.post("/{change_id}/submit", summary="提交审批（须有执行窗口、应急方案、回退方案，写通道）")
def change_submit(request, change_id: int = ID):
    ensure(request.user, Capability.DATA_CHANGE, "api:dataops.change.submit")
    change = services.submit(request.user, _change(request, change_id))
    return _out(change, full=True)


class DecisionIn(Schema):
    model_config = ConfigDict(extra="forbid")
    approve: bool = Field(..., description="true 批准，false 驳回（退回草稿）")
    note: Text(500) = Field("", description="审批意见；驳回时必填")


@router.post("/{change_id}/decision", summary="批准或驳回（财政审批人，且不是提出人）")
def change_decide(request, data: DecisionIn, change_id: int = ID):
    ensure(request.user, Capability.DATA_APPROVE, "api:dataops.change.decide")
    change = services.decide(request.user, _change(request, change_id), approve=data.approve, note=data.note)
    return _out(change, full=True)


@router.post("/{change_id}/execute", summary="执行（已批准、在执行窗口内；后台任务）")
def change_execute(request, change_id: int = ID):
    ensure(request.user, Capability.DATA_CHANGE, "api:dataops.change.execute")
    change = _change(request, change_id)
    job = services.start_execute(request.user, change)
    out = _out(_change(request, change_id), full=True)
    out["job"] = job.pk
    return out


class RollbackIn(Schema):
    model_config = ConfigDict(extra="forbid")
    preview: bool = Field(False, description="true：只列出冲突行，不回滚")
    skip_conflicts: bool = Field(False, description="有冲突时跳过冲突行、只回滚其余行（冲突行从不覆盖）")


@router.post("/{change_id}/rollback", summary="按前镜像回滚；有冲突行时拒绝，除非 skip_conflicts=true")
def change_rollback(request, data: RollbackIn, change_id: int = ID):
    ensure(request.user, Capability.DATA_CHANGE, "api:dataops.change.rollback")
    change = _change(request, change_id)
    if data.preview:
        return {"conflicts": services.rollback_preview(request.user, change)}
    attempt = services.rollback(request.user, change, skip_conflicts=data.skip_conflicts)
    out = _out(_change(request, change_id), full=True)
    out["rollback"] = {
        "state": attempt.state,
        "state_label": attempt.get_state_display(),
        "rows": attempt.rows,
        "message": attempt.message,
        "conflicts": attempt.conflicts,
    }
    return out
