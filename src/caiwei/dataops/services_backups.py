"""备份、按范围恢复与灾难恢复演练 from Django: every path (page, API, command, schedule) comes through here.

The engines (backup.py, restore.py, drill.py) do the work; this module finds the connection of a registered target
database, keeps the records, applies the permissions (region scoping through the target), opens the alert ticket of
a failing backup, and hands the rows chosen in a range restore to the data-change part.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from croniter import croniter
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.checks import limits, sqlitefile, vault
from caiwei.checks.models import TargetDatabase
from caiwei.checks.services import visible_databases

from . import backup as engine
from . import restore as restorer
from .backup import BackupError, Conn
from .models_backups import Backup, BackupSchedule, DrillRecord, RangeRestore

log = logging.getLogger(__name__)
STAGING_KEEP_DAYS = 3
DIALECTS = {"postgresql": engine.POSTGRESQL, "mysql": engine.MYSQL, "sqlite": engine.SQLITE}


# --- what a user sees ----------------------------------------------------------------------------------------------


def visible_backups(user):
    return Backup.objects.filter(database__in=visible_databases(user)).select_related(
        "database", "database__target", "schedule", "alert_ticket"
    )


def visible_schedules(user):
    return BackupSchedule.objects.filter(database__in=visible_databases(user)).select_related(
        "database", "database__target"
    )


def visible_restores(user):
    return RangeRestore.objects.filter(backup__database__in=visible_databases(user)).select_related(
        "backup", "backup__database", "backup__database__target", "created_by"
    )


def visible_drills(user):
    return DrillRecord.objects.filter(database__in=visible_databases(user)).select_related(
        "database", "database__target", "backup", "performed_by"
    )


def backup_databases(user):
    """The databases a user may back up: visible, of a type the engine knows."""
    return visible_databases(user).filter(dialect__in=list(DIALECTS)).order_by("target__name", "name")


def _own(user, database: TargetDatabase) -> None:
    if user is not None and not visible_databases(user).filter(pk=database.pk).exists():
        raise PermissionDenied("无权访问该数据库")


def _problem(exc: Exception) -> ValidationError:
    return ValidationError(str(exc))


# --- connections and files -----------------------------------------------------------------------------------------


def conn_for(database: TargetDatabase) -> Conn:
    """The engine's connection of a registered database (the password unsealed for exactly its connection)."""
    dialect = DIALECTS.get(database.dialect)
    if dialect is None:
        raise BackupError(
            f"暂不支持备份{database.get_dialect_display()}数据库（支持 PostgreSQL、MariaDB/MySQL、SQLite）"
        )
    if dialect == engine.SQLITE:
        try:
            path = sqlitefile.resolve(database.database)[0]
        except sqlitefile.TargetRefused as exc:
            raise BackupError(str(exc)) from exc
        return Conn(engine.SQLITE, str(path))
    try:
        password = database.unsealed_password() if database.secret else ""
    except vault.VaultError as exc:
        raise BackupError(f"数据库密码无法解开：{exc}") from exc
    return Conn(dialect, database.database, database.host, database.port, database.username, password)


def staging_server(database: TargetDatabase) -> Conn:
    """Where scratch databases go: ``CAIWEI_BACKUP_STAGING[dialect]`` (a URL) when set, else the target's own
    server with its own account (which then needs the right to create databases)."""
    own = conn_for(database)
    url = (getattr(settings, "CAIWEI_BACKUP_STAGING", {}) or {}).get(database.dialect)
    if not url or own.dialect == engine.SQLITE:
        return own
    import sqlalchemy as sa

    u = sa.make_url(url)
    return Conn(
        own.dialect, u.database or own.database, u.host or "", u.port, u.username or "", u.password or ""
    )


def scratch_prefix() -> str:
    return getattr(settings, "CAIWEI_BACKUP_SCRATCH_PREFIX", "caiwei")


def backup_root() -> Path:
    return Path(settings.VAR_DIR) / "backups"


def backup_path(backup: Backup) -> Path:
    database = backup.database
    stamp = timezone.localtime(backup.started_at).strftime("%Y%m%d-%H%M%S")
    suffix = engine.SUFFIX[DIALECTS[database.dialect]]
    return backup_root() / f"target-{database.target_id}" / f"db{database.pk}-{stamp}-{backup.pk}{suffix}"


# --- backups -------------------------------------------------------------------------------------------------------


def check_tables(tables) -> list[str]:
    out = []
    for t in tables or []:
        t = str(t).strip()
        if not t:
            continue
        if len(t) > 120 or any(c in t for c in "\x00\n\r;`\"'"):
            raise ValidationError({"tables": f"表名“{t[:40]}”不合规"})
        out.append(t)
    return list(dict.fromkeys(out))


def start_backup(user, database: TargetDatabase, tables=None, schedule=None, inline: bool = False) -> Backup:
    """立即备份 (or a schedule's): queued for the worker unless ``inline``."""
    if user is not None:
        ensure(user, Capability.DATA_BACKUP, "dataops.backup")
        _own(user, database)
    if database.dialect not in DIALECTS:
        raise ValidationError(f"暂不支持备份{database.get_dialect_display()}数据库")
    tables = check_tables(tables)
    item = Backup.objects.create(
        database=database,
        schedule=schedule,
        dialect=database.dialect,
        tables=tables,
        created_by=user,
    )
    record(AuditAction.CREATE, obj=item, detail={"action": "发起备份", "tables": tables or "全部"})
    if inline:
        return execute_backup(item)
    from caiwei.jobs import runner

    job = runner.start(
        "dataops.backup",
        user=user,
        title=f"备份：{database}",
        params={"backup": item.pk},
        region=database.target.region,
    )
    Backup.objects.filter(pk=item.pk).update(job=job)
    item.refresh_from_db()
    return item


def execute_backup(item: Backup) -> Backup:
    database = item.database
    try:
        conn = conn_for(database)
        result = engine.backup(conn, backup_path(item), item.tables or None)
    except Exception as exc:  # noqa: BLE001  (whatever went wrong, the backup failed and is recorded so)
        message = str(exc) if isinstance(exc, BackupError) else f"备份失败：{exc.__class__.__name__}：{exc}"
        log.warning("backup %s failed: %s", item.pk, message)
        Backup.objects.filter(pk=item.pk).update(
            status=Backup.Status.FAILED, error=message[:4000], finished_at=timezone.now()
        )
        item.refresh_from_db()
        raise_alert(item)
        item.refresh_from_db()
        return item
    item.status = Backup.Status.DONE
    item.path, item.sha256, item.size = result.path, result.sha256, result.size
    item.seconds, item.counts = result.seconds, result.counts  # tables stays as asked ([] = all)
    item.counts_source, item.tool_version = result.counts_source, result.tool_version
    item.finished_at = timezone.now()
    item.error = ""
    item.save()
    if item.schedule_id:
        prune(item.schedule)
    return item


def _previous(item: Backup) -> Backup | None:
    return (
        Backup.objects.filter(database=item.database, schedule=item.schedule, started_at__lte=item.started_at)
        .exclude(pk=item.pk)
        .exclude(status=Backup.Status.RUNNING)
        .order_by("-started_at", "-pk")
        .first()
    )


def raise_alert(item: Backup):
    """A failed backup opens one 故障 ticket per failing streak of its schedule (or of the database's manual
    backups): a failure right after another failure keeps the ticket already opened; a success ends the streak."""
    with transaction.atomic():
        TargetDatabase.objects.select_for_update().filter(pk=item.database_id).first()
        previous = _previous(item)
        if previous is not None and previous.status == Backup.Status.FAILED and previous.alert_ticket_id:
            Backup.objects.filter(pk=item.pk).update(alert_ticket=previous.alert_ticket_id)
            return previous.alert_ticket
        database = item.database
        what = f"备份计划 #{item.schedule_id}（{item.schedule.cron}）" if item.schedule_id else "手动备份"
        description = "\n".join(
            [
                f"数据库备份失败：{database}（{database.get_dialect_display()}）",
                f"来源：{what}；备份记录 #{item.pk}；开始于 {timezone.localtime(item.started_at):%Y-%m-%d %H:%M:%S}",
                f"错误：{item.error}",
                "",
                "同一备份计划在恢复成功之前再次失败，不再另开工单。请检查数据库连接、账号密码与备份目录空间。",
            ]
        )
        ticket = _open_ticket(item.created_by, database, f"数据库备份失败：{database}", description)
        Backup.objects.filter(pk=item.pk).update(alert_ticket=ticket)
        record(
            AuditAction.UPDATE,
            obj=item,
            after={"alert_ticket": ticket.number},
            detail={"action": "备份失败，开告警工单"},
        )
    return ticket


def _open_ticket(user, database: TargetDatabase, title: str, description: str):
    """A 故障 ticket through the desk's own path when the user may open one there; else (the worker) the same
    steps with no account: policy of the region, a number, the SLA due times."""
    from caiwei.desk import services as desk
    from caiwei.desk.models import SYSTEMS, Ticket

    region = database.target.region
    fields = {
        "channel": Ticket.Channel.INSPECTION,
        "system": database.target.system if database.target.system in SYSTEMS else "其他",
        "module": "数据库备份",
        "requester_kind": Ticket.RequesterKind.INTERNAL,
        "ticket_type": "故障",
        "severity": "紧急",
        "title": title[:120],
        "description": description,
    }
    if user is not None and user.can(Capability.DESK_CREATE):
        try:
            return desk.create_ticket(
                user, region=region, requester_name=user.get_full_name() or user.username, **fields
            )
        except PermissionDenied:
            pass
    return desk.system_ticket(region=region, requester_name="财维备份任务", **fields)


def prune(schedule: BackupSchedule, now: datetime | None = None) -> list[int]:
    """Retention: delete the files of the backups the schedule no longer keeps and mark them."""
    now = now or timezone.now()
    done = list(
        Backup.objects.filter(schedule=schedule, status=Backup.Status.DONE).values_list("pk", "finished_at")
    )
    ids = engine.to_prune(done, schedule.keep_count, schedule.keep_days, now)
    in_use = set(
        RangeRestore.objects.filter(backup__in=ids, status=RangeRestore.Status.RUNNING).values_list(
            "backup_id", flat=True
        )
    ) | set(
        DrillRecord.objects.filter(backup__in=ids, status=DrillRecord.Status.RUNNING).values_list(
            "backup_id", flat=True
        )
    )
    pruned = []
    for item in Backup.objects.filter(pk__in=[i for i in ids if i not in in_use]):
        if item.path:
            Path(item.path).unlink(missing_ok=True)
        item.status, item.pruned_at = Backup.Status.PRUNED, now
        item.save(update_fields=["status", "pruned_at"])
        pruned.append(item.pk)
    if pruned:
        record(
            AuditAction.DELETE,
            obj=schedule,
            detail={"action": "按保留策略删除备份", "backups": pruned},
        )
    return pruned


def prune_all(user=None) -> list[int]:
    if user is not None:
        ensure(user, Capability.DATA_BACKUP, "dataops.prune")
    schedules = visible_schedules(user) if user is not None else BackupSchedule.objects.all()
    return [pk for s in schedules for pk in prune(s)]


# --- schedules -----------------------------------------------------------------------------------------------------


def next_fire(schedule: BackupSchedule, after: datetime) -> datetime:
    it = croniter(schedule.cron, timezone.localtime(after))
    when = it.get_next(datetime)
    if schedule.calendar:
        from caiwei.bizcalendar.engine import is_business_day
        from caiwei.bizcalendar.services import get_calendar

        spec = get_calendar(schedule.calendar).spec()
        for _ in range(400):
            if is_business_day(spec, when.date()):
                break
            when = it.get_next(datetime)
    return when


def save_schedule(user, schedule: BackupSchedule) -> BackupSchedule:
    ensure(user, Capability.DATA_BACKUP, "dataops.backup_schedule")
    _own(user, schedule.database)
    if problem := limits.cron_problem(schedule.cron):
        raise ValidationError({"cron": problem})
    if schedule.calendar:
        from caiwei.bizcalendar.services import get_calendar

        get_calendar(schedule.calendar)
    if not schedule.keep_count and not schedule.keep_days:
        raise ValidationError({"keep_count": "保留份数与保留天数至少填写一项"})
    schedule.tables = check_tables(schedule.tables)
    if schedule.created_by_id is None:
        schedule.created_by = user
    schedule.next_run_at = next_fire(schedule, timezone.now()) if schedule.enabled else None
    schedule.full_clean()
    schedule.save()
    return schedule


def change_schedule(
    user, schedule: BackupSchedule, *, enabled: bool | None = None, delete: bool = False
) -> None:
    ensure(user, Capability.DATA_BACKUP, "dataops.backup_schedule")
    _own(user, schedule.database)
    if delete:
        schedule.delete()
        return
    schedule.enabled = bool(enabled)
    schedule.next_run_at = next_fire(schedule, timezone.now()) if schedule.enabled else None
    schedule.save(update_fields=["enabled", "next_run_at"])


def fire_schedules(now: datetime | None = None) -> int:
    """Start the backups whose time has come (the worker's tick, each minute)."""
    now = now or timezone.now()
    fired = 0
    for schedule in BackupSchedule.objects.filter(enabled=True, next_run_at__lte=now).select_related(
        "database"
    ):
        taken = BackupSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=next_fire(schedule, now)
        )
        if not taken:
            continue
        start_backup(None, schedule.database, schedule.tables, schedule=schedule)
        fired += 1
    return fired


# --- range restore --------------------------------------------------------------------------------------------------


def usable_backup(backup: Backup) -> None:
    """A backup may be restored only when it succeeded and its file still has the recorded checksum."""
    if backup.status != Backup.Status.DONE:
        raise ValidationError(f"备份 #{backup.pk} 状态为“{backup.get_status_display()}”，不能用于恢复")
    try:
        engine.verify(backup.path, backup.sha256)
    except BackupError as exc:
        record(AuditAction.ADMIN, obj=backup, detail={"action": "备份文件校验失败", "message": str(exc)})
        raise ValidationError(str(exc)) from exc


def start_restore(
    user, backup: Backup, table: str, condition: str = "", inline: bool = False
) -> RangeRestore:
    if user is not None:
        ensure(user, Capability.DATA_BACKUP, "dataops.restore")
        _own(user, backup.database)
    table = (table or "").strip()
    if table not in (backup.counts or {}):
        raise ValidationError({"table": f"备份 #{backup.pk} 中没有表“{table[:60]}”"})
    usable_backup(backup)
    database = backup.database
    try:
        live = database.engine()
        try:
            columns, key = restorer.table_columns(live, table)
        finally:
            live.dispose()
        if not key:
            raise BackupError(f"表 {table} 没有主键，不能按行比对")
        where = restorer.check_condition(condition, table, columns, DIALECTS[database.dialect])
    except BackupError as exc:
        raise ValidationError({"condition": str(exc)}) from exc
    except Exception as exc:  # the live database cannot be reached or the table is gone
        raise ValidationError(
            f"读取当前库的表 {table} 失败：{str(getattr(exc, 'orig', exc)).splitlines()[0][:200]}"
        ) from exc
    item = RangeRestore.objects.create(
        backup=backup, table=table, condition=condition.strip(), condition_sql=where, key=key, created_by=user
    )
    record(
        AuditAction.CREATE, obj=item, detail={"action": "发起按范围恢复", "table": table, "condition": where}
    )
    if inline:
        return execute_restore(item)
    from caiwei.jobs import runner

    runner.start(
        "dataops.restore",
        user=user,
        title=f"按范围恢复：{database} {table}",
        params={"restore": item.pk},
        region=database.target.region,
    )
    item.refresh_from_db()
    return item


def execute_restore(item: RangeRestore) -> RangeRestore:
    backup = item.backup
    database = backup.database
    try:
        engine.verify(backup.path, backup.sha256)
        server = staging_server(database)
        name = f"{scratch_prefix()}_stage_{item.pk}"
        staging = restorer.restore_table(server, backup.path, item.table, name)
        if server.dialect != engine.SQLITE:
            RangeRestore.objects.filter(pk=item.pk).update(staging_db=name)
        stage_engine = staging.engine(read_only=staging.dialect == engine.SQLITE)
        live = database.engine()
        try:
            result = restorer.range_diff(stage_engine, live, item.table, item.condition_sql, key=item.key)
        finally:
            stage_engine.dispose()
            live.dispose()
    except Exception as exc:  # noqa: BLE001  (a diff error, a tool error, the server gone: all end the restore)
        message = (
            str(exc)
            if isinstance(exc, BackupError)
            else f"恢复或比对失败：{str(getattr(exc, 'orig', exc))[:500]}"
        )
        RangeRestore.objects.filter(pk=item.pk).update(
            status=RangeRestore.Status.FAILED, error=message, finished_at=timezone.now()
        )
        item.refresh_from_db()
        _drop_staging(item)
        return item
    rows, truncated = restorer.diff_rows(result)
    item.refresh_from_db()
    item.rows, item.truncated = rows, truncated
    item.summary = {
        "changed": len(result.changed),
        "only_backup": len(result.only_left),
        "only_live": len(result.only_right),
        "rows_backup": result.stats.rows_left,
        "rows_live": result.stats.rows_right,
        "seconds": round(result.stats.seconds, 3),
        "columns": result.columns,
    }
    item.status, item.finished_at = RangeRestore.Status.READY, timezone.now()
    item.save()
    return item


def _drop_staging(item: RangeRestore) -> None:
    if not item.staging_db:
        return
    try:
        restorer.drop_database(staging_server(item.backup.database), item.staging_db)
    except BackupError as exc:
        log.warning("staging %s not dropped: %s", item.staging_db, exc)
        return
    RangeRestore.objects.filter(pk=item.pk).update(staging_db="")


def picks_for(item: RangeRestore, selected: list) -> list[dict]:
    """The diff rows named by ``selected`` (indexes into the grid, or keys as lists)."""
    by_key = {tuple(map(str, r["key"])): r for r in item.rows}
    picks, unknown = [], []
    for choice in selected:
        if isinstance(choice, int) or (isinstance(choice, str) and choice.isdigit()):
            n = int(choice)
            if 0 <= n < len(item.rows):
                picks.append(item.rows[n])
                continue
            unknown.append(str(choice))
            continue
        row = by_key.get(tuple(map(str, choice))) if isinstance(choice, list | tuple) else None
        if row is None:
            unknown.append("/".join(map(str, choice)) if isinstance(choice, list | tuple) else str(choice))
        else:
            picks.append(row)
    if unknown:
        raise ValidationError({"selected": f"差异中没有这些行：{'、'.join(unknown[:10])}"})
    if not picks:
        raise ValidationError({"selected": "请至少选择一行"})
    return [{"kind": p["kind"], "key": p["key"], "columns": list(p["columns"])} for p in picks]


def restore_sql(item: RangeRestore, picks: list[dict]) -> list[str]:
    database = item.backup.database
    server = staging_server(database)
    staging = (
        Conn(engine.SQLITE, item.backup.path)
        if server.dialect == engine.SQLITE
        else server.with_database(item.staging_db)
    )
    stage_engine = staging.engine(read_only=staging.dialect == engine.SQLITE)
    live = database.engine()
    try:
        return restorer.restore_statements(stage_engine, live, item.table, item.key, picks)
    finally:
        stage_engine.dispose()
        live.dispose()


def hand_over(*, database, author, title: str, sql: str, reason: str, ticket=None, origin_ref: int):
    """The one call into the data-change part (changes_services.create_change, wired at merge)."""
    from caiwei.dataops import changes_services

    return changes_services.create_change(
        database=database,
        author=author,
        title=title,
        sql=sql,
        reason=reason,
        ticket=ticket,
        origin="backup",
        origin_ref=origin_ref,
    )


def generate_change(user, item: RangeRestore, selected: list, reason: str = ""):
    """生成数据变更: SQL for the rows chosen, handed to the data-change part (review, approval, execution there)."""
    ensure(user, Capability.DATA_CHANGE, "dataops.restore_change")
    _own(user, item.backup.database)
    if item.status != RangeRestore.Status.READY:
        raise ValidationError(f"按范围恢复 #{item.pk} 状态为“{item.get_status_display()}”，不能生成数据变更")
    if item.change_id:
        raise ValidationError(f"已生成数据变更 #{item.change_id}，不能重复生成")
    picks = picks_for(item, selected)
    try:
        statements = restore_sql(item, picks)
    except BackupError as exc:
        raise ValidationError(str(exc)) from exc
    sql = ";\n".join(statements) + ";"
    reason = (reason or "").strip() or f"按备份 #{item.backup_id} 恢复表 {item.table} 的 {len(picks)} 行"
    with transaction.atomic():
        change = hand_over(
            database=item.backup.database,
            author=user,
            title=f"按范围恢复 #{item.pk}：{item.table}（{len(picks)} 行）",
            sql=sql,
            reason=reason,
            origin_ref=item.pk,
        )
        item.selected, item.sql = picks, sql
        item.change_id = getattr(change, "pk", None)
        item.save(update_fields=["selected", "sql", "change_id"])
        record(
            AuditAction.UPDATE,
            obj=item,
            detail={"action": "生成数据变更", "rows": len(picks), "change": item.change_id},
        )
    return change


def close_restore(user, item: RangeRestore) -> RangeRestore:
    if user is not None:
        ensure(user, Capability.DATA_BACKUP, "dataops.restore_close")
        _own(user, item.backup.database)
    _drop_staging(item)
    item.refresh_from_db()
    if item.status != RangeRestore.Status.CLOSED:
        item.status, item.closed_at = RangeRestore.Status.CLOSED, timezone.now()
        item.save(update_fields=["status", "closed_at"])
    return item


def expire_staging(now: datetime | None = None, days: int | None = None) -> int:
    """Close the range restores whose staging database is older than ``days`` (STAGING_KEEP_DAYS)."""
    now = now or timezone.now()
    days = days if days is not None else getattr(settings, "CAIWEI_BACKUP_STAGING_DAYS", STAGING_KEEP_DAYS)
    old = RangeRestore.objects.filter(
        status__in=[RangeRestore.Status.READY, RangeRestore.Status.FAILED],
        created_at__lt=now - timedelta(days=days),
    )
    n = 0
    for item in old.select_related("backup__database"):
        close_restore(None, item)
        n += 1
    return n


# --- drills ---------------------------------------------------------------------------------------------------------


def latest_backup(database: TargetDatabase) -> Backup | None:
    return (
        Backup.objects.filter(database=database, status=Backup.Status.DONE, tables=[])
        .order_by("-started_at", "-pk")
        .first()
        or Backup.objects.filter(database=database, status=Backup.Status.DONE)
        .order_by("-started_at", "-pk")
        .first()
    )


def start_drill(
    user,
    database: TargetDatabase,
    backup: Backup | None = None,
    rto_goal_minutes: int = 240,
    rpo_goal_hours: int = 24,
    packs: str = "all",
    inline: bool = False,
) -> DrillRecord:
    if user is not None:
        ensure(user, Capability.DATA_BACKUP, "dataops.drill")
        _own(user, database)
    backup = backup or latest_backup(database)
    if backup is None:
        raise ValidationError(f"{database} 还没有成功的备份，请先备份")
    if backup.database_id != database.pk:
        raise ValidationError(f"备份 #{backup.pk} 不是 {database} 的备份")
    if not (1 <= int(rto_goal_minutes) <= 100_000) or not (1 <= int(rpo_goal_hours) <= 100_000):
        raise ValidationError("恢复时间目标与恢复点目标应为正整数")
    from caiwei.checks.custom_services import rules_for_run
    from caiwei.checks.engine import RuleError

    try:
        rules_for_run(packs or "all", database)
    except RuleError as exc:
        raise ValidationError({"packs": str(exc)}) from exc
    usable_backup(backup)
    drill = DrillRecord.objects.create(
        database=database,
        backup=backup,
        rto_goal_minutes=rto_goal_minutes,
        rpo_goal_hours=rpo_goal_hours,
        packs=packs or "all",
        performed_by=user,
    )
    record(AuditAction.CREATE, obj=drill, detail={"action": "发起灾难恢复演练", "backup": backup.pk})
    if inline:
        return execute_drill(drill)
    from caiwei.jobs import runner

    runner.start(
        "dataops.drill",
        user=user,
        title=f"灾难恢复演练：{database}",
        params={"drill": drill.pk},
        region=database.target.region,
    )
    drill.refresh_from_db()
    return drill


def _check_runner(database: TargetDatabase, packs: str):
    from caiwei.checks.custom_services import rules_for_run
    from caiwei.checks.runner import Options, run_url

    rules = rules_for_run(packs, database)
    options = Options(as_of=database.as_of_date(), sample=False, timeout_s=database.timeout_s)

    def run(url: str) -> list[dict]:
        outcomes = run_url(url, rules, options, database.get_mapping())
        return [
            {"id": o.rule.id, "title": o.rule.title, "pack": o.rule.pack, "count": o.count, "error": o.error}
            for o in outcomes
        ]

    return run


def execute_drill(drill: DrillRecord, progress=None) -> DrillRecord:
    from . import drill as drills

    database, backup = drill.database, drill.backup
    started = timezone.now()
    try:
        server = staging_server(database)
        if server.dialect == engine.SQLITE:
            scratch = str(backup_root() / "drills" / f"drill-{drill.pk}.sqlite3")
        else:
            scratch = f"{scratch_prefix()}_drill_{drill.pk}"
    except BackupError as exc:
        DrillRecord.objects.filter(pk=drill.pk).update(
            status=DrillRecord.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        drill.refresh_from_db()
        return drill
    DrillRecord.objects.filter(pk=drill.pk).update(scratch_db=scratch, started_at=started)
    try:
        outcome = drills.run_drill(
            server,
            backup.path,
            backup.sha256,
            backup.counts,
            scratch,
            run_checks=_check_runner(database, drill.packs),
            log=progress,
        )
    except Exception as exc:  # noqa: BLE001  (the drill failed; say so rather than leave it running)
        DrillRecord.objects.filter(pk=drill.pk).update(
            status=DrillRecord.Status.FAILED, error=f"演练中断：{exc}"[:4000], finished_at=timezone.now()
        )
        drill.refresh_from_db()
        return drill
    drill.refresh_from_db()
    drill.steps = [s.as_dict() for s in outcome.steps]
    drill.counts, drill.checks, drill.error = outcome.counts, outcome.checks, outcome.error
    drill.rto_seconds = outcome.rto_seconds
    drill.rpo_seconds = (outcome.started_at - backup.started_at).total_seconds()
    drill.status = DrillRecord.Status.PASSED if outcome.passed else DrillRecord.Status.FAILED
    drill.finished_at = timezone.now()
    drill.save()
    from .report_backups import write_report

    drill.report = str(write_report(drill))
    drill.save(update_fields=["report"])
    return drill


def drills_in_year(user, year: int) -> int:
    """Drills finished with a report in ``year`` (local time) on the databases the user sees (the KPI)."""
    return (
        visible_drills(user)
        .filter(finished_at__year=year, status__in=[DrillRecord.Status.PASSED, DrillRecord.Status.FAILED])
        .exclude(report="")
        .count()
    )
