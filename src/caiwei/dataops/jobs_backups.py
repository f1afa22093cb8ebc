"""Jobs of backups, range restores and DR drills; the tick fires the backup schedules whose time has come and
drops staging databases left open too long."""

from caiwei.jobs.runner import JobContext, job_kind, on_tick


@job_kind("dataops.backup", "数据库备份")
def backup_job(ctx: JobContext) -> dict:
    from .models_backups import Backup
    from .services_backups import execute_backup

    item = Backup.objects.select_related("database", "database__target", "schedule").get(
        pk=ctx.params["backup"]
    )
    ctx.log(f"备份：{item.database}")
    item = execute_backup(item)
    if item.status != Backup.Status.DONE:
        raise RuntimeError(item.error)
    ctx.log(f"完成：{item.file_name}，{item.size} 字节，SHA-256 {item.sha256}")
    return {"backup": item.pk, "sha256": item.sha256, "size": item.size}


@job_kind("dataops.restore", "按范围恢复")
def restore_job(ctx: JobContext) -> dict:
    from .models_backups import RangeRestore
    from .services_backups import execute_restore

    item = RangeRestore.objects.select_related("backup", "backup__database").get(pk=ctx.params["restore"])
    ctx.log(f"从备份 #{item.backup_id} 恢复表 {item.table} 到临时库并与当前库比对")
    item = execute_restore(item)
    if item.status == RangeRestore.Status.FAILED:
        raise RuntimeError(item.error)
    ctx.log(f"比对完成：{item.summary}")
    return {"restore": item.pk, "summary": item.summary}


@job_kind("dataops.drill", "灾难恢复演练")
def drill_job(ctx: JobContext) -> dict:
    from .models_backups import DrillRecord
    from .services_backups import execute_drill

    drill = DrillRecord.objects.select_related("database", "database__target", "backup").get(
        pk=ctx.params["drill"]
    )
    drill = execute_drill(drill, progress=ctx.log)
    ctx.log(f"演练结束：{drill.get_status_display()}")
    return {"drill": drill.pk, "status": drill.status, "rto_seconds": drill.rto_seconds}


@on_tick
def backups_due() -> None:
    from .services_backups import expire_staging, fire_schedules

    fire_schedules()
    expire_staging()
