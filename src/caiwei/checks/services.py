"""Data checks from Django: targets and their connections, runs (in the worker), the diff against the previous run,
trends, tickets from findings, schedules. Every path (page, API, command, schedule) comes through here."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from croniter import croniter
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.desk.models import SYSTEMS, Ticket
from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from . import limits, sqlitefile, vault
from .custom_services import rules_for_run
from .engine import RuleError, parse_overrides, shipped_packs, shipped_rule
from .models import CheckRun, CheckSchedule, RuleResult, Target, TargetDatabase
from .runner import Options, explain_error, logical_columns, read_only, run_rules
from .sqlplan import Scope

log = logging.getLogger(__name__)
DIFF_KEEP = 200


def visible_targets(user):
    return Target.objects.visible_to(user).select_related("region")


def visible_databases(user):
    return TargetDatabase.objects.filter(target__in=visible_targets(user)).select_related(
        "target", "target__region"
    )


def visible_runs(user):
    return CheckRun.objects.filter(database__in=visible_databases(user)).select_related(
        "database", "database__target", "created_by"
    )


def visible_results(user):
    return RuleResult.objects.filter(run__in=visible_runs(user))


def visible_schedules(user):
    return CheckSchedule.objects.filter(database__in=visible_databases(user))


def _own_database(user, database: TargetDatabase) -> None:
    if user is None:
        return
    if database.pk is None:  # an unsaved database (a form being tested): its target must be the user's
        if not visible_targets(user).filter(pk=database.target_id).exists():
            raise PermissionDenied("无权访问该运维对象")
    elif not visible_databases(user).filter(pk=database.pk).exists():
        raise PermissionDenied("无权访问该运维对象")


# --- targets ----------------------------------------------------------------------------------------------------


def save_target(user, target: Target) -> Target:
    ensure(user, Capability.MANAGE_TARGETS, "checks.target")
    if target.created_by_id is None:
        target.created_by = user
    target.full_clean()
    if not visible_regions(user).filter(pk=target.region_id).exists():
        raise PermissionDenied("无权在该区划登记运维对象")
    target.save()
    return target


ASK_AGAIN = "修改了{fields}，请重新输入密码：已保存的密码只用于原来的连接"


def password_required(database: TargetDatabase, stored: TargetDatabase | None) -> str:
    """Why the stored password may not stay with ``database`` as changed (empty when it may)."""
    if stored is None or not stored.secret or database.secret != stored.secret:
        return ""
    if database.dialect == TargetDatabase.Dialect.SQLITE:
        return ""
    changed = database.changed_connection_fields(stored)
    if not changed:
        return ""
    labels = "、".join(str(TargetDatabase._meta.get_field(f).verbose_name) for f in changed)
    return ASK_AGAIN.format(fields=labels)


def save_database(
    user, database: TargetDatabase, password: str | None = None, clear_password: bool = False
) -> TargetDatabase:
    """Create or change a database. A new password replaces the sealed one; an empty one keeps it — but only while
    the connection (type, host, port, database, user) stays the same: change any of them and the password must be
    given again (or cleared). SQLite needs none; a SQLite target's file is judged by sqlitefile.py."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.database")
    if not visible_targets(user).filter(pk=database.target_id).exists():
        raise PermissionDenied("无权访问该运维对象")
    stored = TargetDatabase.objects.filter(pk=database.pk).first() if database.pk else None
    if stored is not None and stored.target_id != database.target_id:
        raise PermissionDenied("不能把数据库移到另一个运维对象")
    if clear_password or database.dialect == TargetDatabase.Dialect.SQLITE:
        database.secret = ""
    elif password:
        database.set_password(password)  # sealed for the connection as it now is
    elif reason := password_required(database, stored):
        raise ValidationError({"password": reason})
    database.full_clean()
    database.save()
    return database


def test_connection(user, database: TargetDatabase) -> tuple[bool, str]:
    """Connect read-only, ask the server's version and which logical tables the mapping finds.

    ``database`` is either the stored one or an unsaved one built from a form or an API body (then nothing is
    written back): whichever, only its own values are used — a stored password unseals only for the connection
    fields it was stored with (models.TargetDatabase.connection_identity)."""
    if user is not None:
        ensure(user, Capability.MANAGE_TARGETS, "checks.database.test")
        _own_database(user, database)
    saved = database.pk is not None and not database._state.adding and not _is_changed(database)
    try:
        engine = database.engine()
    except (vault.VaultError, sqlitefile.TargetRefused, sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        ok, message = False, f"连接配置有误：{exc}"
    else:
        try:
            with read_only(engine, min(database.timeout_s, 30)) as conn:
                version = ".".join(str(v) for v in (engine.dialect.server_version_info or ())[:3])
                names = {
                    n.lower()
                    for n in sa.inspect(conn).get_table_names(schema=database.get_mapping().schema or None)
                }
            mapping = database.get_mapping()
            wanted = {mapping.tables.get(t, t).lower() for t in logical_columns()} - {"sandbox_info"}
            found = len(wanted & names)
            ok = True
            message = f"连接成功（{database.get_dialect_display()} {version}，只读）；逻辑表 {len(wanted)} 张中找到 {found} 张"
        except sqlitefile.TargetRefused as exc:
            ok, message = False, f"连接配置有误：{exc}"
        except sa.exc.DBAPIError as exc:
            ok, message = False, explain_error(exc, database.timeout_s)
        finally:
            engine.dispose()
    detail = {"action": "测试连接", "ok": ok, "message": message[:300]}
    if saved:
        TargetDatabase.objects.filter(pk=database.pk).update(
            last_test_at=timezone.now(), last_test_ok=ok, last_test_message=message[:300]
        )
        database.refresh_from_db()
        record(AuditAction.ADMIN, obj=database, detail=detail)
    else:
        record(
            AuditAction.ADMIN,
            object_type="checks.targetdatabase",
            object_id=str(database.pk or ""),
            object_repr=f"{database.target} · {database.name}"[:200],
            detail={**detail, "action": "测试连接（未保存的设置）", "url": database.display_url},
        )
    return ok, message


def _is_changed(database: TargetDatabase) -> bool:
    """Whether ``database`` differs from its stored row in anything a connection uses."""
    stored = TargetDatabase.objects.filter(pk=database.pk).first()
    if stored is None:
        return True
    return bool(database.changed_connection_fields(stored)) or any(
        getattr(database, f) != getattr(stored, f) for f in ("secret", "mapping", "timeout_s")
    )


# --- runs -------------------------------------------------------------------------------------------------------


def _check_scope(scope: Scope) -> None:
    """Region codes that name a region, dates within the years a check can mean."""
    errors = []
    if scope.regions:
        known = set(Region.objects.filter(code__in=scope.regions).values_list("code", flat=True))
        unknown = [c for c in scope.regions if c not in known]
        if unknown:
            errors.append(f"区划代码不存在：{'、'.join(unknown)}")
    for label, value in (("日期起", scope.date_from), ("日期止", scope.date_to)):
        if problem := limits.date_problem(value):
            errors.append(f"{label}：{problem}")
    if errors:
        raise ValidationError(errors)


def start_run(
    user,
    database: TargetDatabase,
    packs: str = "all",
    scope: dict | None = None,
    sample: bool = True,
    schedule: CheckSchedule | None = None,
    inline: bool = False,
    params: str | list[str] = "",
) -> CheckRun:
    """Queue a run for the worker (runs at once where huey is immediate), or run it here with ``inline``."""
    if user is not None:
        ensure(user, Capability.CHECKS_RUN, "checks.run")
        _own_database(user, database)
    try:
        rules = rules_for_run(packs, database)  # shipped packs, plus approved 本地规则 (custom_services.py)
        scope_obj = Scope.from_dict(scope)
        overrides = parse_overrides(params, rules)
    except (RuleError, ValueError) as exc:
        raise ValidationError(str(exc)) from exc
    _check_scope(scope_obj)
    from caiwei.jobs import runner

    run = CheckRun.objects.create(
        database=database,
        packs=packs or "all",
        scope=scope_obj.as_dict(),
        as_of=database.as_of_date(),
        sample=sample,
        params=overrides,
        created_by=user,
        schedule=schedule,
        rules_total=len(rules),
    )
    if inline:
        return execute(run)
    job = runner.start(
        "checks.run",
        user=user,
        title=f"数据检查：{database}",
        params={"run": run.pk},
        region=database.target.region,
    )
    CheckRun.objects.filter(pk=run.pk).update(job=job)
    run.refresh_from_db()
    return run


def execute(run: CheckRun, progress=None) -> CheckRun:
    """Run the rules of ``run`` against its database and store the results with their diff."""
    database = run.database
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.RUNNING, started_at=timezone.now())

    def step(done: int, total: int, what: str) -> None:
        CheckRun.objects.filter(pk=run.pk).update(done=done, total=total)
        if progress:
            progress(done, total)

    options = Options(
        as_of=run.as_of,
        scope=Scope.from_dict(run.scope),
        sample=run.sample,
        timeout_s=database.timeout_s,
        params=run.params,
    )
    try:
        engine = database.engine()  # a SQLite file is judged again here, and again as the connection opens
        try:
            outcomes = run_rules(
                engine, rules_for_run(run.packs, database), options, database.get_mapping(), step
            )
        finally:
            engine.dispose()
    except (
        RuleError,
        vault.VaultError,
        sqlitefile.TargetRefused,
        sa.exc.SQLAlchemyError,
        ModuleNotFoundError,
    ) as exc:
        message = explain_error(exc, database.timeout_s) if isinstance(exc, sa.exc.DBAPIError) else str(exc)
        CheckRun.objects.filter(pk=run.pk).update(
            status=CheckRun.Status.FAILED, message=message, finished_at=timezone.now()
        )
        run.refresh_from_db()
        return run
    previous = previous_results(run, [o.rule.id for o in outcomes]) if run.sample else {}
    results = []
    for o in outcomes:
        result = RuleResult(
            run=run,
            rule_id=o.rule.id,
            pack=o.rule.pack,
            title=o.rule.title,
            severity=o.rule.severity,
            module=o.rule.module,
            count=o.count,
            amount=Decimal(o.amount) if o.amount is not None else None,
            keys=o.keys,
            keys_truncated=o.keys_truncated,
            columns=o.columns,
            sample=o.sample,
            units=o.units,
            sql=o.sql,
            params=o.params,
            error=o.error,
            seconds=o.seconds,
            rule_version=o.rule.version,
        )
        if run.sample and o.count is not None and not o.error:
            _diff(result, previous.get(o.rule.id))
        results.append(result)
    with transaction.atomic():
        RuleResult.objects.bulk_create(results)
        CheckRun.objects.filter(pk=run.pk).update(
            status=CheckRun.Status.DONE,
            finished_at=timezone.now(),
            rules_total=len(results),
            rules_failing=sum(1 for r in results if r.count),
            rules_error=sum(1 for r in results if r.error),
            findings=sum(r.count or 0 for r in results),
            message="",
        )
    run.refresh_from_db()
    if run.schedule_id:
        CheckSchedule.objects.filter(pk=run.schedule_id).update(last_run=run)
    return run


def previous_results(run: CheckRun, rule_ids: list[str]) -> dict[str, RuleResult]:
    """Per rule, its latest earlier result on the same database and the same scope with keys fetched."""
    earlier_runs = (
        CheckRun.objects.filter(
            database=run.database, status=CheckRun.Status.DONE, sample=True, created_at__lte=run.created_at
        )
        .exclude(pk=run.pk)
        .order_by("-created_at", "-pk")
        .values_list("pk", "scope")[:100]
    )
    same_scope = [pk for pk, scope in earlier_runs if scope == run.scope]  # scopes compare as JSON values
    found: dict[str, RuleResult] = {}
    earlier = RuleResult.objects.filter(
        run__in=same_scope, rule_id__in=rule_ids, count__isnull=False
    ).order_by("-run__created_at", "-run_id")
    for result in earlier.iterator(chunk_size=100):  # keys are loaded only for runs that can be compared
        found.setdefault(result.rule_id, result)
        if len(found) == len(rule_ids):
            break
    return found


def _key_set(keys: list) -> set[str]:
    return {json.dumps(k, ensure_ascii=False) for k in keys}


def _diff(result: RuleResult, previous: RuleResult | None) -> None:
    if previous is None:
        return
    now, before = _key_set(result.keys), _key_set(previous.keys)
    new, resolved = sorted(now - before), sorted(before - now)
    result.previous = previous
    result.new_count, result.still_count, result.resolved_count = len(new), len(now & before), len(resolved)
    result.new_keys = [json.loads(k) for k in new[:DIFF_KEEP]]
    result.resolved_keys = [json.loads(k) for k in resolved[:DIFF_KEEP]]


def trend(result: RuleResult, limit: int = 30) -> list[dict]:
    """The rule's count over the database's last runs (oldest first), for the result page's chart."""
    rows = (
        RuleResult.objects.filter(
            run__database_id=result.run.database_id, rule_id=result.rule_id, count__isnull=False
        )
        .order_by("-run__created_at")
        .values("run_id", "run__created_at", "count")[:limit]
    )
    return [
        {
            "run": r["run_id"],
            "at": timezone.localtime(r["run__created_at"]).strftime("%m-%d %H:%M"),
            "count": r["count"],
        }
        for r in reversed(rows)
    ]


# --- tickets ----------------------------------------------------------------------------------------------------


TICKET_KEYS = 50  # failing keys listed in a ticket's description


def ticket_engineers(region):
    """Who a ticket from a finding may go to: active 二线工程师 whose granted regions cover ``region``."""
    from caiwei.accounts.models import User

    parts = [p for p in region.path.split("/") if p]
    paths = ["".join(f"{p}/" for p in parts[: i + 1]) for i in range(len(parts))]
    return (
        User.objects.filter(
            role_grants__role="engineer", is_active=True, region_grants__region__path__in=paths
        )
        .distinct()
        .order_by("username")
    )


def failing_keys_text(result: RuleResult, limit: int = TICKET_KEYS) -> str:
    """“问题数据主键（pay_app_id，共 3 条）：PA1、PA2、PA3” — the stored (masked where sensitive) keys, up to ``limit``."""
    rule = shipped_rule(result.rule_id)
    names = "/".join(rule.key) if rule else "主键"
    keys = ["/".join(str(v) for v in key) for key in (result.keys or [])[:limit]]
    shown = len(keys)
    more = ""
    if (result.count or 0) > shown:
        more = f"……（仅列出前 {shown} 条，全部主键见结果页或导出的 Excel）"
    head = f"问题数据主键（{names}，共 {result.count} 条）："
    return head + ("、".join(keys) if keys else "（本次只计数，未抽取主键）") + more


def open_ticket(user, result: RuleResult, assignee=None, severity: str | None = None) -> Ticket:
    """由问题开工单: one ticket per result, with the severity chosen (the rule's by default), handed to an engineer of
    the target's region if one is chosen; the description carries the failing keys, the advice and the listing SQL."""
    ensure(user, Capability.CHECKS_RUN, "checks.ticket")
    _own_database(user, result.run.database)
    if result.ticket_id:
        return result.ticket
    if not result.count:
        raise ValidationError("该规则没有发现问题，无需开工单")
    run, database = result.run, result.run.database
    severity = severity or result.severity
    check_ticket_choice(database.target.region, severity, assignee)
    rule = shipped_rule(result.rule_id)
    amount_label = rule.amount_label if rule else "涉及金额"
    amount = f"，{amount_label} {result.amount:,.2f} 元" if result.amount is not None else ""
    description = "\n".join(
        [
            f"数据检查发现问题：{result.rule_id} {result.title}",
            f"运维对象：{database}；检查日 {run.as_of:%Y-%m-%d}；检查记录 #{run.pk}",
            f"问题 {result.count} 条{amount}。",
            failing_keys_text(result),
            "",
            f"处理建议：{rule.advice if rule else ''}",
            "",
            "列出全部问题数据的 SQL：",
            result.sql,
            "",
            f"结果页：{reverse('checks:result', args=[result.pk])}",
        ]
    )
    with transaction.atomic():
        ticket = finding_ticket(
            user,
            region=database.target.region,
            system=result.module if result.module in SYSTEMS else "其他",
            module=shipped_packs()[result.pack].title if result.pack in shipped_packs() else result.pack,
            severity=severity,
            assignee=assignee,
            title=f"数据检查：{result.title}（{result.count} 条）",
            description=description,
        )
        RuleResult.objects.filter(pk=result.pk).update(ticket=ticket)
        record(
            AuditAction.UPDATE,
            object_type="checks.ruleresult",
            object_id=str(result.pk),
            object_repr=f"{result.rule_id} {result.title}",
            after={"ticket": ticket.number, "severity": severity, "assignee": str(assignee or "")},
        )
    result.refresh_from_db()
    return ticket


def check_ticket_choice(region, severity: str, assignee) -> None:
    """The severity and the engineer chosen for a finding's ticket: a severity of the desk, an engineer of the region."""
    from caiwei.desk.models import SEVERITY_CHOICES

    allowed = [s for s, _ in SEVERITY_CHOICES]
    if severity not in allowed:
        raise ValidationError(f"严重程度“{severity}”不正确，应为 {'、'.join(allowed)} 之一")
    if assignee is not None and not ticket_engineers(region).filter(pk=assignee.pk).exists():
        raise ValidationError(f"{assignee} 不是{region.name}的二线工程师，不能分派给他")


def finding_ticket(
    user, *, region, system: str, module: str, severity: str, assignee, title: str, description: str
):
    """A 数据变更 ticket for something the platform found (a check's problem rows, a reconciliation break), opened by
    the desk's own path (desk.services.create_ticket) as an internal request through the 数据检查 channel."""
    from caiwei.desk.services import create_ticket

    return create_ticket(
        user,
        region=region,
        channel=Ticket.Channel.CHECK,
        system=system,
        module=module,
        requester_kind=Ticket.RequesterKind.INTERNAL,
        ticket_type="数据变更",
        severity=severity,
        assignee=assignee,
        title=title[:120],
        description=description,
        requester_name=user.get_full_name() or user.username,
    )


# --- schedules --------------------------------------------------------------------------------------------------


def save_schedule(user, schedule: CheckSchedule) -> CheckSchedule:
    ensure(user, Capability.MANAGE_TARGETS, "checks.schedule")
    _own_database(user, schedule.database)
    if problem := limits.cron_problem(schedule.cron):
        raise ValidationError({"cron": problem})
    try:
        rules_for_run(schedule.packs)
    except RuleError as exc:
        raise ValidationError({"packs": str(exc)}) from exc
    schedule.next_run_at = next_fire(schedule.cron, timezone.now())
    schedule.full_clean()
    schedule.save()
    return schedule


def change_schedule(
    user, schedule: CheckSchedule, *, enabled: bool | None = None, delete: bool = False
) -> None:
    """停用、启用或删除定时检查 (re-enabling starts counting from now, not from the missed times)."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.schedule")
    _own_database(user, schedule.database)
    if delete:
        schedule.delete()
        return
    schedule.enabled = bool(enabled)
    schedule.next_run_at = next_fire(schedule.cron, timezone.now()) if schedule.enabled else None
    schedule.save(update_fields=["enabled", "next_run_at"])


def next_fire(cron: str, after: datetime) -> datetime:
    return croniter(cron, timezone.localtime(after)).get_next(datetime)


def fire_schedules(now: datetime | None = None) -> int:
    """Start the runs whose time has come (the worker's tick calls this each minute)."""
    now = now or timezone.now()
    fired = 0
    for schedule in CheckSchedule.objects.filter(enabled=True, next_run_at__lte=now).select_related(
        "database"
    ):
        updated = CheckSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=next_fire(schedule.cron, now)
        )
        if not updated:  # another worker took it
            continue
        start_run(None, schedule.database, schedule.packs, schedule.scope, schedule.sample, schedule=schedule)
        fired += 1
    return fired


# --- the sandbox as a target --------------------------------------------------------------------------------------


def register_sandbox(run_first: bool = True) -> TargetDatabase | None:
    """The README's quickstart: the loaded sandbox becomes a target, with a first check run done."""
    from caiwei.sandbox.service import default_url, summary

    info = summary()
    if not info.get("loaded"):
        return None
    url = default_url()
    spec = (info.get("manifest") or {}).get("spec") or {}
    city = str(spec.get("regions", "")).partition(":")[0]
    region = Region.objects.filter(code=city).first() or Region.objects.order_by("path").first()
    if region is None:
        return None
    target, _ = Target.objects.get_or_create(
        name="演练库",
        defaults={
            "system": "国库集中支付",
            "region": region,
            "is_sandbox": True,
            "vendor": "财维",
            "description": "财维自带的预算执行演练库，含注入的故障",
        },
    )
    as_of = _sandbox_as_of(info)
    dialect = sa.engine.make_url(url).get_backend_name()
    path = sa.engine.make_url(url).database if dialect == "sqlite" else ""
    database, created = TargetDatabase.objects.get_or_create(
        target=target,
        name="业务库",
        defaults={
            "dialect": dialect if dialect in TargetDatabase.Dialect.values else "sqlite",
            "database": path or url,
            "as_of": as_of,
        },
    )
    if not created and database.as_of != as_of:
        TargetDatabase.objects.filter(pk=database.pk).update(as_of=as_of)
        database.refresh_from_db()
    if run_first and not database.runs.filter(status=CheckRun.Status.DONE).exists():
        start_run(None, database, inline=True)
    return database


def _sandbox_as_of(info: dict) -> date | None:
    spec = (info.get("manifest") or {}).get("spec") or {}
    value = spec.get("as_of")
    return date.fromisoformat(value) if value else None


def sandbox_comparison(run: CheckRun) -> dict | None:
    """For a run on the loaded sandbox, its findings against the sandbox's manifest (None when not applicable:
    another database, counts only, or the sandbox regenerated since the run)."""
    from caiwei.sandbox.service import default_url, manifest_path

    from .truth import FAULT_RULES, compare, findings

    database = run.database
    if not (database.target.is_sandbox and run.sample and run.status == CheckRun.Status.DONE):
        return None
    default = sa.engine.make_url(default_url())
    if database.dialect != default.get_backend_name():
        return None
    if database.dialect == TargetDatabase.Dialect.SQLITE:
        try:
            same = sqlitefile.resolve(database.database)[0] == sqlitefile.sandbox_file()
        except sqlitefile.TargetRefused:
            same = False
    else:
        same = database.database == (default.database or "")
    if not same:
        return None
    path = manifest_path()
    if not path.exists() or run.started_at is None or path.stat().st_mtime > run.started_at.timestamp():
        return None
    results = list(run.results.values_list("rule_id", "keys"))
    checked = {rule_id for rule_id, _ in results}
    report = compare(json.loads(path.read_text()), findings(results))
    report["faults"] = [r for r in report["faults"] if set(FAULT_RULES[r["fault"]]) <= checked]
    return report
