"""备份、按范围恢复、灾难恢复演练 pages: thin adapters over services_backups."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from . import services_backups as services
from .models_backups import BackupSchedule, RangeRestore
from .report_backups import content, duration, report_name, size_text


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "；".join(m for errors in exc.message_dict.values() for m in errors)
    return "；".join(exc.messages)


def _int(value, default: int | None = None) -> int | None:
    value = str(value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else default


def _tables(text: str) -> list[str]:
    return [t.strip() for t in (text or "").replace("，", ",").replace("\n", ",").split(",") if t.strip()]


@require(Capability.DATA_VIEW)
def index(request):
    user = request.user
    backups = services.visible_backups(user)
    database = _int(request.GET.get("database"))
    if database:
        backups = backups.filter(database_id=database)
    page = Paginator(backups, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "dataops/backups/index.html",
        {
            "page": page,
            "databases": services.backup_databases(user),
            "schedules": services.visible_schedules(user),
            "chosen": database,
            "can_backup": user.can(Capability.DATA_BACKUP),
            "restores": services.visible_restores(user).exclude(status=RangeRestore.Status.CLOSED)[:20],
        },
    )


def _database(request, value):
    pk = _int(value)
    return services.backup_databases(request.user).filter(pk=pk).first() if pk else None


@require(Capability.DATA_BACKUP)
@require_POST
def run(request):
    database = _database(request, request.POST.get("database"))
    if database is None:
        messages.error(request, "请选择要备份的数据库")
        return redirect("dataops:backups")
    try:
        item = services.start_backup(request.user, database, _tables(request.POST.get("tables", "")))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("dataops:backups")
    return redirect("dataops:backup", item.pk)


@require(Capability.DATA_VIEW)
def detail(request, pk):
    item = get_object_or_404(services.visible_backups(request.user), pk=pk)
    counts = sorted((item.counts or {}).items())
    context = {
        "item": item,
        "counts": counts,
        "total_rows": sum(n for _, n in counts),
        "size": size_text(item.size),
        "duration": duration(item.seconds),
        "restores": services.visible_restores(request.user).filter(backup=item)[:20],
        "can_backup": request.user.can(Capability.DATA_BACKUP),
    }
    if request.headers.get("HX-Request"):
        return render(request, "dataops/backups/_backup.html", context)
    return render(request, "dataops/backups/backup.html", context)


@require(Capability.DATA_BACKUP)
@require_POST
def verify(request, pk):
    item = get_object_or_404(services.visible_backups(request.user), pk=pk)
    try:
        services.usable_backup(item)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"备份文件校验通过：SHA-256 {item.sha256}")
    return redirect("dataops:backup", item.pk)


@require(Capability.DATA_BACKUP)
@require_POST
def schedule_new(request):
    database = _database(request, request.POST.get("database"))
    if database is None:
        messages.error(request, "请选择数据库")
        return redirect("dataops:backups")
    schedule = BackupSchedule(
        database=database,
        cron=request.POST.get("cron", "").strip()[:60],
        calendar=request.POST.get("calendar", "").strip()[:30],
        tables=_tables(request.POST.get("tables", "")),
        keep_count=_int(request.POST.get("keep_count")),
        keep_days=_int(request.POST.get("keep_days")),
    )
    try:
        services.save_schedule(request.user, schedule)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(
            request, f"已保存备份计划：{schedule.cron}，下次执行 {schedule.next_run_at:%Y-%m-%d %H:%M}"
        )
    return redirect("dataops:backups")


@require(Capability.DATA_BACKUP)
@require_POST
def schedule_change(request, pk):
    schedule = get_object_or_404(services.visible_schedules(request.user), pk=pk)
    action = request.POST.get("action", "")
    if action not in ("enable", "disable", "delete"):
        messages.error(request, "未知的操作")
        return redirect("dataops:backups")
    services.change_schedule(request.user, schedule, enabled=action == "enable", delete=action == "delete")
    messages.success(request, {"enable": "已启用", "disable": "已停用", "delete": "已删除"}[action])
    return redirect("dataops:backups")


@require(Capability.DATA_BACKUP)
@require_POST
def restore_start(request, pk):
    item = get_object_or_404(services.visible_backups(request.user), pk=pk)
    try:
        restore = services.start_restore(
            request.user, item, request.POST.get("table", ""), request.POST.get("condition", "")[:2100]
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("dataops:backup", item.pk)
    return redirect("dataops:restore", restore.pk)


@require(Capability.DATA_VIEW)
def restore_detail(request, pk):
    item = get_object_or_404(services.visible_restores(request.user), pk=pk)
    rows = [dict(r, n=n, key_text=" / ".join(str(v) for v in r["key"])) for n, r in enumerate(item.rows)]
    context = {
        "item": item,
        "rows": rows,
        "kinds": {"changed": "内容不同", "only_backup": "仅在备份中", "only_live": "仅在当前库"},
        "can_change": request.user.can(Capability.DATA_CHANGE),
        "can_backup": request.user.can(Capability.DATA_BACKUP),
    }
    if request.headers.get("HX-Request"):
        return render(request, "dataops/backups/_restore.html", context)
    return render(request, "dataops/backups/restore.html", context)


@require(Capability.DATA_CHANGE)
@require_POST
def restore_change(request, pk):
    item = get_object_or_404(services.visible_restores(request.user), pk=pk)
    try:
        change = services.generate_change(
            request.user, item, request.POST.getlist("row"), request.POST.get("reason", "")[:500]
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    except ImportError:
        messages.error(request, "数据变更功能尚未启用，已生成的 SQL 未能提交")
    else:
        messages.success(request, f"已生成数据变更 #{getattr(change, 'pk', '')}，请在数据变更中提交审核")
    return redirect("dataops:restore", item.pk)


@require(Capability.DATA_BACKUP)
@require_POST
def restore_close(request, pk):
    item = get_object_or_404(services.visible_restores(request.user), pk=pk)
    services.close_restore(request.user, item)
    messages.success(request, "已关闭，临时库已删除")
    return redirect("dataops:restore", item.pk)


@require(Capability.DATA_VIEW)
def drills(request):
    user = request.user
    page = Paginator(services.visible_drills(user), 30).get_page(request.GET.get("page"))
    return render(
        request,
        "dataops/backups/drills.html",
        {
            "page": page,
            "databases": services.backup_databases(user),
            "can_backup": user.can(Capability.DATA_BACKUP),
            "year_count": services.drills_in_year(user, timezone.localdate().year),
        },
    )


@require(Capability.DATA_BACKUP)
@require_POST
def drill_start(request):
    database = _database(request, request.POST.get("database"))
    if database is None:
        messages.error(request, "请选择要演练的数据库")
        return redirect("dataops:drills")
    backup = None
    if backup_pk := _int(request.POST.get("backup")):
        backup = services.visible_backups(request.user).filter(pk=backup_pk).first()
        if backup is None:
            messages.error(request, f"备份 #{backup_pk} 不存在")
            return redirect("dataops:drills")
    try:
        drill = services.start_drill(
            request.user,
            database,
            backup,
            rto_goal_minutes=_int(request.POST.get("rto_goal_minutes"), 240) or 240,
            rpo_goal_hours=_int(request.POST.get("rpo_goal_hours"), 24) or 24,
            packs=request.POST.get("packs", "all").strip()[:200] or "all",
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("dataops:drills")
    return redirect("dataops:drill", drill.pk)


@require(Capability.DATA_VIEW)
def drill_detail(request, pk):
    drill = get_object_or_404(services.visible_drills(request.user), pk=pk)
    context = {
        "drill": drill,
        "c": content(drill),
        "rto": duration(drill.rto_seconds),
        "rpo": duration(drill.rpo_seconds),
    }
    if request.headers.get("HX-Request"):
        return render(request, "dataops/backups/_drill.html", context)
    return render(request, "dataops/backups/drill.html", context)


@require(Capability.DATA_VIEW)
def drill_report(request, pk):
    drill = get_object_or_404(services.visible_drills(request.user), pk=pk)
    if not drill.report or not Path(drill.report).is_file():
        return HttpResponse("该演练尚未生成恢复报告", status=409, content_type="text/plain; charset=utf-8")
    return FileResponse(
        open(drill.report, "rb"),  # noqa: SIM115  (FileResponse closes it)
        as_attachment=True,
        filename=report_name(drill),
        content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
