from datetime import date
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from pydantic import ValidationError as PydanticError

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.regions.models import Region

from . import services
from .engine import shipped_packs
from .models import CheckRun, CheckSchedule, RuleResult, Target, TargetDatabase

router = Router(tags=["数据检查"])


class TargetIn(Schema):
    name: str
    system: str
    region: str  # region code
    vendor: str = ""
    description: str = ""


class DatabaseIn(Schema):
    name: str
    dialect: str
    host: str = ""
    port: int | None = None
    database: str
    username: str = ""
    password: str = ""  # write-only: sealed, never returned
    read_only: bool = True
    timeout_s: int = 300
    as_of: date | None = None
    mapping: dict = {}


class DatabasePatch(Schema):
    """Only the fields given change. An empty or absent password keeps the sealed one — but only while dialect, host,
    port, database and username stay the same: change any of them and give the password again (or clear_password)."""

    name: str | None = None
    dialect: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str = ""
    clear_password: bool = False
    read_only: bool | None = None
    timeout_s: int | None = None
    as_of: date | None = None
    mapping: dict | None = None


class ConnectionTest(Schema):
    """Values to test without saving them (absent fields are the stored ones). The stored password is used only when
    dialect, host, port, database and username are all unchanged; otherwise give the password to test with."""

    dialect: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str = ""
    timeout_s: int | None = None
    mapping: dict | None = None


class RunIn(Schema):
    database: int
    packs: str = "all"
    scope: dict = {}
    sample: bool = True
    params: list[str] = []  # e.g. ["BIZ-001.cutoff=5"]: a date parameter takes days before the as-of date


class ScheduleIn(Schema):
    cron: str
    packs: str = "all"
    sample: bool = True
    enabled: bool = True


def _database_out(db: TargetDatabase) -> dict[str, Any]:
    return {
        "id": db.pk,
        "name": db.name,
        "dialect": db.dialect,
        "url": db.display_url,
        "has_password": db.has_password,
        "read_only": db.read_only,
        "timeout_s": db.timeout_s,
        "as_of": db.as_of,
        "mapping": db.mapping,
        "last_test_ok": db.last_test_ok,
        "last_test_message": db.last_test_message,
        "schedules": [_schedule_out(s) for s in db.schedules.all()],
    }


def _schedule_out(s: CheckSchedule) -> dict[str, Any]:
    return {"id": s.pk, "cron": s.cron, "packs": s.packs, "enabled": s.enabled, "next_run_at": s.next_run_at}


def _target_out(t: Target) -> dict[str, Any]:
    return {
        "id": t.pk,
        "name": t.name,
        "system": t.system,
        "region": t.region.code,
        "vendor": t.vendor,
        "is_sandbox": t.is_sandbox,
        "databases": [_database_out(d) for d in t.databases.all()],
    }


def _run_out(run: CheckRun, with_results: bool = False) -> dict[str, Any]:
    out = {
        "id": run.pk,
        "database": run.database_id,
        "target": run.database.target.name,
        "packs": run.packs,
        "scope": run.scope,
        "as_of": run.as_of,
        "sample": run.sample,
        "params": run.params,
        "status": run.status,
        "message": run.message,
        "done": run.done,
        "total": run.total,
        "created_at": run.created_at,
        "seconds": run.seconds,
        "rules_total": run.rules_total,
        "rules_failing": run.rules_failing,
        "rules_error": run.rules_error,
        "findings": run.findings,
    }
    if with_results:
        out["results"] = [_result_out(r) for r in run.results.order_by("id")]
    return out


def _result_out(r: RuleResult, full: bool = False) -> dict[str, Any]:
    out = {
        "id": r.pk,
        "rule": r.rule_id,
        "title": r.title,
        "pack": r.pack,
        "severity": r.severity,
        "count": r.count,
        "amount": str(r.amount) if r.amount is not None else None,
        "new": r.new_count,
        "still": r.still_count,
        "resolved": r.resolved_count,
        "error": r.error,
        "ticket": r.ticket.number if r.ticket_id else None,
    }
    if full:
        out.update(
            keys=r.keys,
            keys_truncated=r.keys_truncated,
            sample=r.sample,
            units=r.units,
            sql=r.sql,
            params=r.params,
            new_keys=r.new_keys,
            resolved_keys=r.resolved_keys,
            trend=services.trend(r),
        )
    return out


@router.get("/packs", summary="规则库：规则包与规则（含 SQL、参数、处理建议）")
def packs(request):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.packs")
    return [
        {
            "name": name,
            "title": pack.title,
            "description": pack.description,
            "rules": [
                {
                    "id": r.id,
                    "title": r.title,
                    "severity": r.severity,
                    "module": r.module,
                    "description": r.description,
                    "advice": r.advice,
                    "key": list(r.key),
                    "params": {p.name: p.describe() for p in r.params},
                    "sql": r.sql,
                }
                for r in pack.rules
            ],
        }
        for name, pack in shipped_packs().items()
    ]


@router.get("/targets", summary="运维对象与其数据库（密码不返回）")
def targets(request):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.targets")
    return [_target_out(t) for t in services.visible_targets(request.user).prefetch_related("databases")]


@router.post("/targets", summary="登记运维对象")
def create_target(request, data: TargetIn):
    region = Region.objects.filter(code=data.region).first()
    if region is None:
        raise ValidationError({"region": f"区划代码“{data.region}”不存在"})
    target = Target(
        name=data.name, system=data.system, region=region, vendor=data.vendor, description=data.description
    )
    return _target_out(services.save_target(request.user, target))


@router.post("/targets/{target_id}/databases", summary="为运维对象添加数据库（密码加密保存，之后不再返回）")
def create_database(request, target_id: int, data: DatabaseIn):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.database")
    target = get_object_or_404(services.visible_targets(request.user), pk=target_id)
    fields = data.dict(exclude={"password"})
    database = services.save_database(request.user, TargetDatabase(target=target, **fields), data.password)
    return _database_out(database)


@router.patch("/databases/{database_id}", summary="修改数据库连接（给出的字段才改；password 留空保持原密码）")
def change_database(request, database_id: int, data: DatabasePatch):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.database")
    database = get_object_or_404(services.visible_databases(request.user), pk=database_id)
    for field, value in data.dict(exclude={"password", "clear_password"}, exclude_unset=True).items():
        setattr(database, field, value)
    database = services.save_database(request.user, database, data.password, data.clear_password)
    return _database_out(database)


def _connection_test(request) -> ConnectionTest | None:
    """The optional JSON body of 测试连接 (a bare POST tests the stored database, as before)."""
    if not request.body.strip() or not request.content_type.endswith("json"):
        return None
    try:
        return ConnectionTest.model_validate_json(request.body)
    except PydanticError as exc:
        problems = "；".join(f"{'.'.join(map(str, e['loc'])) or '请求体'}：{e['msg']}" for e in exc.errors())
        raise ValidationError(f"请求体不正确：{problems}") from exc


@router.post(
    "/databases/{database_id}/test",
    summary="测试连接（只读）；可带上未保存的连接设置来测试（改了连接信息须同时给出密码）",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ConnectionTest.model_json_schema()}},
        }
    },
)
def test_database(request, database_id: int):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.test")
    database = get_object_or_404(services.visible_databases(request.user), pk=database_id)
    data = _connection_test(request)
    if data is not None:
        stored = TargetDatabase.objects.get(pk=database.pk)
        for field, value in data.dict(exclude={"password"}, exclude_unset=True).items():
            setattr(database, field, value)
        if data.password:
            database.set_password(data.password)
        elif database.dialect == TargetDatabase.Dialect.SQLITE:
            database.secret = ""
        elif reason := services.password_required(database, stored):
            raise ValidationError({"password": reason})
        database.full_clean()
    ok, message = services.test_connection(request.user, database)
    return {"ok": ok, "message": message}


@router.post("/databases/{database_id}/schedules", summary="添加定时检查（cron）")
def create_schedule(request, database_id: int, data: ScheduleIn):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.schedule")
    database = get_object_or_404(services.visible_databases(request.user), pk=database_id)
    schedule = services.save_schedule(request.user, CheckSchedule(database=database, **data.dict()))
    return _schedule_out(schedule)


class ScheduleChangeIn(Schema):
    action: Literal["enable", "disable", "delete"]


@router.post("/schedules/{schedule_id}", summary="启用、停用或删除定时检查")
def change_schedule(request, schedule_id: int, data: ScheduleChangeIn):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.schedule")
    schedule = get_object_or_404(
        CheckSchedule, pk=schedule_id, database__in=services.visible_databases(request.user)
    )
    services.change_schedule(
        request.user, schedule, enabled=data.action == "enable", delete=data.action == "delete"
    )
    return {"id": schedule_id, "action": data.action}


@router.post("/runs", summary="执行检查（后台任务）；scope 可含 regions、year、date_from、date_to")
def start_run(request, data: RunIn):
    ensure(request.user, Capability.CHECKS_RUN, "api:checks.run")
    database = get_object_or_404(services.visible_databases(request.user), pk=data.database)
    run = services.start_run(request.user, database, data.packs, data.scope, data.sample, params=data.params)
    return _run_out(run, with_results=run.status == CheckRun.Status.DONE)


@router.get("/runs", summary="检查记录")
def runs(request, database: int | None = None, limit: int = 50):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.runs")
    qs = services.visible_runs(request.user)
    if database:
        qs = qs.filter(database_id=database)
    return [_run_out(r) for r in qs[: min(limit, 500)]]


@router.get("/runs/{run_id}", summary="一次检查及各规则的结果（条数、金额、与上次比对）")
def run_detail(request, run_id: int):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.run.detail")
    return _run_out(get_object_or_404(services.visible_runs(request.user), pk=run_id), with_results=True)


@router.get("/results/{result_id}", summary="一条规则的结果：主键、脱敏样本、列出全部问题的 SQL、比对与趋势")
def result_detail(request, result_id: int):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.result")
    result = get_object_or_404(RuleResult, pk=result_id, run__in=services.visible_runs(request.user))
    return _result_out(result, full=True)


@router.post("/results/{result_id}/ticket", summary="由问题开工单（一条结果一张工单，重复调用返回同一张）")
def result_ticket(request, result_id: int):
    result = get_object_or_404(RuleResult, pk=result_id, run__in=services.visible_runs(request.user))
    ticket = services.open_ticket(request.user, result)
    return {"ticket": ticket.number, "id": ticket.pk, "severity": ticket.severity}
