"""`caiwei data change create|submit|approve|reject|execute|rollback|recover|show …`: the same services as the pages;
``--user`` names the account acting (its capabilities and regions apply)."""

from __future__ import annotations

import json
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

ACTIONS: tuple[str, ...] = ("change",)


def add_arguments(sub) -> None:
    change = sub.add_parser(
        "change",
        help="数据变更：create 新建 | submit 提交审批 | approve 批准 | reject 驳回 | execute 执行 | rollback 回滚 | recover 崩溃恢复 | show 查看",
    )
    ops = change.add_subparsers(dest="op", required=True)
    create = ops.add_parser("create", help="新建数据变更（草稿，保存前按审核规则检查）")
    create.add_argument("--user", required=True, help="提出人用户名")
    create.add_argument("--database", type=int, required=True, help="目标数据库编号")
    create.add_argument("--title", required=True)
    create.add_argument("--reason", required=True)
    create.add_argument("--sql", help="变更 SQL；或用 --sql-file")
    create.add_argument("--sql-file", help="从文件读取变更 SQL")
    create.add_argument("--emergency-plan", default="", help="应急方案")
    create.add_argument("--rollback-plan", default="", help="回退方案")
    create.add_argument("--window-start", help="执行窗口开始，如 2026-12-01T20:00")
    create.add_argument("--window-end", help="执行窗口结束")
    create.add_argument("--ddl", action="store_true", help="声明含 DDL")
    for name, text in (
        ("submit", "提交审批"),
        ("approve", "批准"),
        ("reject", "驳回"),
        ("execute", "执行（同步，在本进程中）"),
        ("rollback", "按前镜像回滚"),
        ("show", "查看"),
    ):
        op = ops.add_parser(name, help=text)
        op.add_argument("id", type=int, help="变更编号（数字）")
        op.add_argument("--user", required=name != "show", help="操作人用户名")
        if name in ("approve", "reject"):
            op.add_argument("--note", default="", help="审批意见")
        if name == "rollback":
            op.add_argument("--skip-conflicts", action="store_true", help="跳过冲突行，只回滚其余行")
        if name == "show":
            op.add_argument("--json", action="store_true")
    ops.add_parser("recover", help="判定崩溃遗留的执行与回滚（按目标库标记）")


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"时间“{text}”格式不正确，应如 2026-12-01T20:00") from exc
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _user(name: str | None):
    from caiwei.accounts.models import User

    user = User.objects.filter(username=name, is_active=True).first() if name else None
    if user is None:
        raise CommandError(f"用户“{name}”不存在或已停用")
    return user


def _show(change, out) -> None:
    from . import changes_services as services

    data = {
        "id": change.pk,
        "number": change.number,
        "title": change.title,
        "status": change.status,
        "status_label": change.get_status_display(),
        "status_note": change.status_note,
        "estimated_rows": change.estimated_rows,
        "sql": change.sql,
        "findings": change.findings,
        "attempts": [
            {
                "id": a.pk,
                "kind": a.kind,
                "state": a.state,
                "rows": a.rows,
                "message": a.message,
                "conflicts": len(a.conflicts),
            }
            for a in change.attempts.all()
        ],
        "journal": [
            {"step": j["step"], "label": j["label"], "detail": j["detail"]}
            for j in services.journal_for_display(change)
        ],
    }
    out.write(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def handle(command, options) -> None:
    from caiwei.audit.context import acting_as

    from . import changes_services as services
    from .models_changes import ChangeRequest

    op = options["op"]
    out = command.stdout
    try:
        if op == "recover":
            with acting_as(None, "cli"):
                found = services.recover()
            for item in found:
                out.write(f"变更 #{item['change']} 第 {item['attempt']} 次尝试：{item['decision']}")
            out.write(f"共判定 {len(found)} 个")
            return
        user = _user(options.get("user")) if options.get("user") else None
        with acting_as(user, "cli"):
            if op == "create":
                sql = options.get("sql") or ""
                if options.get("sql_file"):
                    with open(options["sql_file"], encoding="utf-8") as fh:
                        sql = fh.read()
                from caiwei.checks.models import TargetDatabase

                database = TargetDatabase.objects.filter(pk=options["database"]).first()
                if database is None:
                    raise CommandError(f"数据库 {options['database']} 不存在")
                change = services.create_change(
                    database=database, author=user, title=options["title"], sql=sql, reason=options["reason"]
                )
                change = services.save_change(
                    user,
                    change,
                    emergency_plan=options["emergency_plan"],
                    rollback_plan=options["rollback_plan"],
                    window_start=_when(options.get("window_start")),
                    window_end=_when(options.get("window_end")),
                    declares_ddl=bool(options.get("ddl")),
                )
                out.write(f"已创建 {change.number}（编号 {change.pk}），估计影响 {change.estimated_rows} 行")
                return
            change = (
                ChangeRequest.objects.select_related("database", "database__target")
                .filter(pk=options["id"])
                .first()
            )
            if change is None or (
                user is not None and not services.visible_changes(user).filter(pk=change.pk).exists()
            ):
                raise CommandError(f"变更 {options['id']} 不存在或不在授权范围内")
            if op == "show":
                _show(change, out)
            elif op == "submit":
                services.submit(user, change)
                out.write(f"{change.number} 已提交审批")
            elif op in ("approve", "reject"):
                services.decide(user, change, approve=op == "approve", note=options.get("note") or "")
                out.write(f"{change.number} 已{'批准' if op == 'approve' else '驳回'}")
            elif op == "execute":
                attempt = services.execute(user, change)
                out.write(
                    f"{change.number}：{attempt.get_state_display()}，影响 {attempt.rows} 行{'；' + attempt.message if attempt.message else ''}"
                )
                if attempt.state != attempt.State.APPLIED:
                    raise CommandError(attempt.message or attempt.get_state_display())
            elif op == "rollback":
                attempt = services.rollback(user, change, skip_conflicts=bool(options.get("skip_conflicts")))
                out.write(
                    f"{change.number} 回滚：{attempt.get_state_display()}，恢复 {attempt.rows} 行{'；' + attempt.message if attempt.message else ''}"
                )
                for c in attempt.conflicts[:20]:
                    out.write(f"冲突：表 {c['table']} 主键 {c['key']}")
                if attempt.state != attempt.State.APPLIED:
                    raise CommandError(attempt.message or attempt.get_state_display())
    except ValidationError as exc:
        raise CommandError("；".join(exc.messages)) from exc
    except PermissionDenied as exc:
        raise CommandError(str(exc)) from exc
