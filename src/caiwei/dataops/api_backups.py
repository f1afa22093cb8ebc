"""HTTP API of the backups part of 数据运维 (/api/data/backups): backups, schedules, range restores, DR drills.
The same services and permissions as the pages (region scoping through the target database)."""

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Path as P
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability

from . import services_backups as services
from .models_backups import Backup, BackupSchedule, DrillRecord, RangeRestore
from .report_backups import report_name

router = Router(tags=["数据运维"])
ID = P(..., gt=0, le=2**63 - 1)


def _backup_out(b: Backup, full: bool = False) -> dict[str, Any]:
    out = {
        "id": b.pk,
        "database": b.database_id,
        "database_name": str(b.database),
        "schedule": b.schedule_id,
        "status": b.status,
        "status_label": b.get_status_display(),
        "tables": b.tables,
        "file": b.file_name,
        "sha256": b.sha256,
        "size": b.size,
        "seconds": round(b.seconds, 3),
        "started_at": b.started_at,
        "finished_at": b.finished_at,
        "error": b.error,
        "alert_ticket": b.alert_ticket.number if b.alert_ticket_id else None,
    }
    if full:
        out |= {"counts": b.counts, "counts_source": b.counts_source, "tool_version": b.tool_version}
    return out


def _schedule_out(s: BackupSchedule) -> dict[str, Any]:
    return {
        "id": s.pk,
        "database": s.database_id,
        "cron": s.cron,
        "calendar": s.calendar,
        "tables": s.tables,
        "keep_count": s.keep_count,
        "keep_days": s.keep_days,
        "enabled": s.enabled,
        "next_run_at": s.next_run_at,
    }


def _restore_out(r: RangeRestore, full: bool = False) -> dict[str, Any]:
    out = {
        "id": r.pk,
        "backup": r.backup_id,
        "table": r.table,
        "condition": r.condition,
        "condition_sql": r.condition_sql,
        "key": r.key,
        "status": r.status,
        "status_label": r.get_status_display(),
        "staging_db": r.staging_db,
        "summary": r.summary,
        "error": r.error,
        "change": r.change_id,
        "created_at": r.created_at,
    }
    if full:
        out |= {"rows": r.rows, "truncated": r.truncated, "selected": r.selected, "sql": r.sql}
    return out


def _drill_out(d: DrillRecord, full: bool = False) -> dict[str, Any]:
    out = {
        "id": d.pk,
        "database": d.database_id,
        "backup": d.backup_id,
        "status": d.status,
        "status_label": d.get_status_display(),
        "rto_seconds": d.rto_seconds,
        "rpo_seconds": d.rpo_seconds,
        "rto_goal_minutes": d.rto_goal_minutes,
        "rpo_goal_hours": d.rpo_goal_hours,
        "rto_ok": d.rto_ok,
        "rpo_ok": d.rpo_ok,
        "started_at": d.started_at,
        "finished_at": d.finished_at,
        "error": d.error,
        "report": bool(d.report),
    }
    if full:
        out |= {"steps": d.steps, "counts": d.counts, "checks": d.checks, "packs": d.packs}
    return out


def _database(request, pk: int):
    return get_object_or_404(services.backup_databases(request.user), pk=pk)


# --- backups ------------------------------------------------------------------------------------------------------


@router.get("", summary="备份记录（按授权区划）")
def backups(
    request, database: int | None = Query(None, gt=0, le=2**63 - 1), limit: int = Query(50, ge=1, le=500)
):
    ensure(request.user, Capability.DATA_VIEW, "api:data.backups")
    qs = services.visible_backups(request.user)
    if database:
        qs = qs.filter(database_id=database)
    return [_backup_out(b) for b in qs[:limit]]


class BackupIn(Schema):
    model_config = ConfigDict(extra="forbid")
    database: int = Field(..., gt=0, le=2**63 - 1)
    tables: list[str] = Field(default_factory=list, max_length=2000, description="表名；空为全部表")


@router.post("", response={201: dict}, summary="立即备份（后台任务）")
def backup_run(request, data: BackupIn):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.backup")
    item = services.start_backup(request.user, _database(request, data.database), data.tables)
    return Status(201, _backup_out(item, full=True))


@router.get("/schedules", summary="备份计划")
def schedules(request):
    ensure(request.user, Capability.DATA_VIEW, "api:data.backup_schedules")
    return [_schedule_out(s) for s in services.visible_schedules(request.user)]


class ScheduleIn(Schema):
    model_config = ConfigDict(extra="forbid")
    database: int = Field(..., gt=0, le=2**63 - 1)
    cron: str = Field(..., max_length=60)
    calendar: str = Field("", max_length=30, description="业务日历代码；填写则只在其工作日执行")
    tables: list[str] = Field(default_factory=list, max_length=2000)
    keep_count: int | None = Field(7, ge=1, le=100000)
    keep_days: int | None = Field(None, ge=1, le=100000)


@router.post("/schedules", response={201: dict}, summary="新增备份计划")
def schedule_new(request, data: ScheduleIn):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.backup_schedule")
    schedule = BackupSchedule(
        database=_database(request, data.database),
        cron=data.cron.strip(),
        calendar=data.calendar.strip(),
        tables=data.tables,
        keep_count=data.keep_count,
        keep_days=data.keep_days,
    )
    services.save_schedule(request.user, schedule)
    return Status(201, _schedule_out(schedule))


class ScheduleChange(Schema):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    delete: bool = False


@router.post("/schedules/{int:schedule_id}", summary="启用、停用或删除备份计划")
def schedule_change(request, data: ScheduleChange, schedule_id: int = ID):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.backup_schedule")
    schedule = get_object_or_404(services.visible_schedules(request.user), pk=schedule_id)
    if not data.delete and data.enabled is None:
        raise ValidationError({"enabled": "请给出 enabled（true 或 false）或 delete: true"})
    services.change_schedule(request.user, schedule, enabled=data.enabled, delete=data.delete)
    return {"deleted": True} if data.delete else _schedule_out(schedule)


@router.post("/prune", summary="按各备份计划的保留策略删除过期的备份文件")
def prune(request):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.backup_prune")
    return {"pruned": services.prune_all(request.user)}


@router.get("/{int:backup_id}", summary="一次备份：文件、SHA-256、各表行数")
def backup_detail(request, backup_id: int = ID):
    ensure(request.user, Capability.DATA_VIEW, "api:data.backup")
    return _backup_out(get_object_or_404(services.visible_backups(request.user), pk=backup_id), full=True)


@router.post("/{int:backup_id}/verify", summary="重新校验备份文件的 SHA-256")
def backup_verify(request, backup_id: int = ID):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.backup_verify")
    item = get_object_or_404(services.visible_backups(request.user), pk=backup_id)
    services.usable_backup(item)
    return {"ok": True, "sha256": item.sha256}


# --- range restores -------------------------------------------------------------------------------------------------


class RestoreIn(Schema):
    model_config = ConfigDict(extra="forbid")
    table: str = Field(..., max_length=200)
    condition: str = Field(
        "", max_length=2000, description="WHERE 条件（只读判断，只能引用该表的列）；空为全表"
    )


@router.post(
    "/{int:backup_id}/restores",
    response={201: dict},
    summary="按范围恢复：表（及条件）恢复到临时库并与当前库比对",
)
def restore_start(request, data: RestoreIn, backup_id: int = ID):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.restore")
    item = get_object_or_404(services.visible_backups(request.user), pk=backup_id)
    restore = services.start_restore(request.user, item, data.table, data.condition)
    return Status(201, _restore_out(restore, full=True))


@router.get("/restores/{int:restore_id}", summary="一次按范围恢复：比对摘要与差异行")
def restore_detail(request, restore_id: int = ID):
    ensure(request.user, Capability.DATA_VIEW, "api:data.restore")
    return _restore_out(get_object_or_404(services.visible_restores(request.user), pk=restore_id), full=True)


class ChangeIn(Schema):
    model_config = ConfigDict(extra="forbid")
    selected: list[int | list[Any]] = Field(..., max_length=100000, description="差异行的序号，或主键值列表")
    reason: str = Field("", max_length=500)


@router.post(
    "/restores/{int:restore_id}/change",
    response={201: dict},
    summary="选中的行生成数据变更（交数据变更审核）",
)
def restore_change(request, data: ChangeIn, restore_id: int = ID):
    ensure(request.user, Capability.DATA_CHANGE, "api:data.restore_change")
    item = get_object_or_404(services.visible_restores(request.user), pk=restore_id)
    try:
        services.generate_change(request.user, item, data.selected, data.reason)
    except ImportError as exc:
        raise ValidationError("数据变更功能尚未启用") from exc
    item.refresh_from_db()
    return Status(201, _restore_out(item, full=True))


@router.post("/restores/{int:restore_id}/close", summary="关闭按范围恢复并删除临时库")
def restore_close(request, restore_id: int = ID):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.restore_close")
    item = get_object_or_404(services.visible_restores(request.user), pk=restore_id)
    return _restore_out(services.close_restore(request.user, item))


# --- drills ---------------------------------------------------------------------------------------------------------


@router.get("/drills", summary="灾难恢复演练记录")
def drills(request, limit: int = Query(50, ge=1, le=500)):
    ensure(request.user, Capability.DATA_VIEW, "api:data.drills")
    return [_drill_out(d) for d in services.visible_drills(request.user)[:limit]]


class DrillIn(Schema):
    model_config = ConfigDict(extra="forbid")
    database: int = Field(..., gt=0, le=2**63 - 1)
    backup: int | None = Field(None, gt=0, le=2**63 - 1, description="缺省为最近一次成功的备份")
    rto_goal_minutes: int = Field(240, ge=1, le=100000)
    rpo_goal_hours: int = Field(24, ge=1, le=100000)
    packs: str = Field("all", max_length=200)


@router.post("/drills", response={201: dict}, summary="开始灾难恢复演练（后台任务）")
def drill_start(request, data: DrillIn):
    ensure(request.user, Capability.DATA_BACKUP, "api:data.drill")
    database = _database(request, data.database)
    backup = (
        get_object_or_404(services.visible_backups(request.user), pk=data.backup) if data.backup else None
    )
    drill = services.start_drill(
        request.user, database, backup, data.rto_goal_minutes, data.rpo_goal_hours, data.packs
    )
    return Status(201, _drill_out(drill, full=True))


@router.get("/drills/{int:drill_id}", summary="一次演练：步骤、行数核对、检查结果、恢复时间与恢复点")
def drill_detail(request, drill_id: int = ID):
    ensure(request.user, Capability.DATA_VIEW, "api:data.drill")
    return _drill_out(get_object_or_404(services.visible_drills(request.user), pk=drill_id), full=True)


@router.get("/drills/{int:drill_id}/report", summary="下载恢复报告（Word）")
def drill_report(request, drill_id: int = ID):
    ensure(request.user, Capability.DATA_VIEW, "api:data.drill_report")
    drill = get_object_or_404(services.visible_drills(request.user), pk=drill_id)
    if not drill.report or not Path(drill.report).is_file():
        return HttpResponse(
            '{"detail": "该演练尚未生成恢复报告"}', status=409, content_type="application/json"
        )
    return FileResponse(
        open(drill.report, "rb"),  # noqa: SIM115
        as_attachment=True,
        filename=report_name(drill),
        content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
