"""`caiwei data backup run|list|prune`, `caiwei data restore <备份> --table t [--where …]`,
`caiwei data drill <数据库> [--report out.docx]` — run here (not queued), as the system."""

from __future__ import annotations

import json
import shutil

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

ACTIONS: tuple[str, ...] = ("backup", "restore", "drill")


def add_arguments(sub) -> None:
    backup = sub.add_parser("backup", help="备份：run 立即备份，list 列出备份，prune 按保留策略删除过期备份")
    backup.add_argument("op", choices=["run", "list", "prune"])
    backup.add_argument("database", nargs="?", help="数据库：编号，或 运维对象名/数据库名")
    backup.add_argument("--tables", help="只备份这些表（逗号分隔）")
    backup.add_argument("--limit", type=int, default=30)
    restore = sub.add_parser("restore", help="按范围恢复：把备份中的一张表恢复到临时库并与当前库比对")
    restore.add_argument("backup", type=int, help="备份编号")
    restore.add_argument("--table", required=True)
    restore.add_argument("--where", default="", help="条件（只读的判断，只能引用该表的列）")
    restore.add_argument("--close", action="store_true", help="比对后立即删除临时库")
    drill = sub.add_parser("drill", help="灾难恢复演练：最近的备份恢复到临时库并核对，生成恢复报告")
    drill.add_argument("database", help="数据库：编号，或 运维对象名/数据库名")
    drill.add_argument("--backup", type=int, help="备份编号（默认最近一次成功的备份）")
    drill.add_argument("--report", help="把恢复报告（Word）另存到此路径")
    drill.add_argument("--rto-goal-minutes", type=int, default=240)
    drill.add_argument("--rpo-goal-hours", type=int, default=24)
    drill.add_argument("--packs", default="all")


def find_database(text: str):
    from caiwei.checks.models import TargetDatabase

    text = (text or "").strip()
    if text.isdigit():
        found = TargetDatabase.objects.filter(pk=int(text)).first()
    else:
        target, _, name = text.partition("/")
        found = TargetDatabase.objects.filter(target__name=target, name=name or "业务库").first()
    if found is None:
        raise CommandError(f"找不到数据库“{text}”（写编号，或 运维对象名/数据库名）")
    return found


def handle(command, options) -> None:
    from caiwei.audit.context import acting_as

    with acting_as(None, "cli"):
        try:
            {"backup": _backup, "restore": _restore, "drill": _drill}[options["action"]](command, options)
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc


def _backup(command, options) -> None:
    from . import services_backups as services
    from .models_backups import Backup

    op = options["op"]
    if op == "prune":
        pruned = services.prune_all(None)
        command.stdout.write(f"已删除 {len(pruned)} 份过期备份：{'、'.join(map(str, pruned)) or '无'}")
        return
    if op == "list":
        qs = Backup.objects.select_related("database", "database__target")
        if options.get("database"):
            qs = qs.filter(database=find_database(options["database"]))
        for b in qs[: options["limit"]]:
            command.stdout.write(
                f"#{b.pk}\t{b.database}\t{b.started_at:%Y-%m-%d %H:%M:%S}\t{b.get_status_display()}\t"
                f"{b.size} 字节\t{b.sha256[:16]}\t{b.path or b.error[:80]}"
            )
        return
    if not options.get("database"):
        raise CommandError("请指定要备份的数据库")
    database = find_database(options["database"])
    tables = [t.strip() for t in (options.get("tables") or "").split(",") if t.strip()]
    item = services.start_backup(None, database, tables, inline=True)
    if item.status != Backup.Status.DONE:
        ticket = f"（告警工单 {item.alert_ticket.number}）" if item.alert_ticket_id else ""
        raise CommandError(f"备份失败：{item.error}{ticket}")
    command.stdout.write(
        f"备份 #{item.pk} 完成：{item.path}\nSHA-256 {item.sha256}，{item.size} 字节，用时 {item.seconds:.1f} 秒\n"
        + "\n".join(f"  {t}\t{n} 行" for t, n in sorted(item.counts.items()))
    )


def _restore(command, options) -> None:
    from . import services_backups as services
    from .models_backups import Backup, RangeRestore

    item = Backup.objects.filter(pk=options["backup"]).first()
    if item is None:
        raise CommandError(f"备份 #{options['backup']} 不存在")
    restore = services.start_restore(None, item, options["table"], options.get("where") or "", inline=True)
    if restore.status == RangeRestore.Status.FAILED:
        raise CommandError(restore.error)
    s = restore.summary
    command.stdout.write(
        f"按范围恢复 #{restore.pk}：临时库 {restore.staging_db or item.path}\n"
        f"备份中 {s['rows_backup']} 行，当前库 {s['rows_live']} 行；内容不同 {s['changed']}，"
        f"仅在备份中 {s['only_backup']}，仅在当前库 {s['only_live']}"
    )
    for row in restore.rows[:200]:
        command.stdout.write(json.dumps(row, ensure_ascii=False))
    if options.get("close"):
        services.close_restore(None, restore)
        command.stdout.write("已删除临时库")


def _drill(command, options) -> None:
    from . import services_backups as services
    from .models_backups import Backup, DrillRecord

    database = find_database(options["database"])
    backup = None
    if options.get("backup"):
        backup = Backup.objects.filter(pk=options["backup"], database=database).first()
        if backup is None:
            raise CommandError(f"备份 #{options['backup']} 不是 {database} 的备份")
    drill = services.start_drill(
        None,
        database,
        backup,
        options["rto_goal_minutes"],
        options["rpo_goal_hours"],
        options["packs"],
        inline=True,
    )
    for step in drill.steps:
        command.stdout.write(
            f"{'✓' if step['ok'] else '✗'} {step['name']}\t{step['seconds']} 秒\t{step['note']}"
        )
    command.stdout.write(
        f"演练 #{drill.pk}：{drill.get_status_display()}；恢复时间 {drill.rto_seconds or 0:.1f} 秒，"
        f"数据丢失窗口 {drill.rpo_seconds or 0:.0f} 秒；恢复报告 {drill.report}"
    )
    if options.get("report") and drill.report:
        shutil.copyfile(drill.report, options["report"])
        command.stdout.write(f"已另存恢复报告：{options['report']}")
    if drill.status != DrillRecord.Status.PASSED:
        raise CommandError(f"演练未通过：{drill.error or '见恢复报告'}")
