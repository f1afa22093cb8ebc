import re
from datetime import date
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router, Schema
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.inputs import Line, Text
from caiwei.regions.models import Region

from . import limits, services
from .engine import shipped_packs, shipped_rule
from .models import CheckRun, CheckSchedule, RuleResult, Target, TargetDatabase
from .present import pair_rows

router = Router(tags=["数据检查"])

# Bad input is refused here with the field named, before the services and the models see it.
ID = Path(..., gt=0, le=2**63 - 1)
PORT = Field(None, ge=limits.PORT_MIN, le=limits.PORT_MAX)
TIMEOUT = Field(None, ge=limits.TIMEOUT_MIN, le=limits.TIMEOUT_MAX)
HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+)$")


def _host(value: str | None) -> str | None:
    """A host name or an IP address: no user, port, path or query smuggled in."""
    if value and not HOST.match(value):
        raise ValueError(f"“{value}”不是主机名或 IP 地址（端口请填在 port）")
    return value


def _in_range(value: date | None) -> date | None:
    if problem := limits.date_problem(value):
        raise ValueError(problem)
    return value


def _mapping(value: dict | None) -> dict | None:
    """The shape of a mapping ({"tables": {…}, "columns": {表: {…}}, "schema": "…"})."""
    if value is None:
        return value
    tables, columns = value.get("tables", {}), value.get("columns", {})
    if not isinstance(tables, dict) or not all(isinstance(v, str) for v in tables.values()):
        raise ValueError("tables 应为“逻辑表名: 实际表名”的键值对")
    if not isinstance(columns, dict) or not all(
        isinstance(cols, dict) and all(isinstance(v, str) for v in cols.values()) for cols in columns.values()
    ):
        raise ValueError("columns 应为“逻辑表名: {逻辑列名: 实际列名}”的键值对")
    if not isinstance(value.get("schema", ""), str):
        raise ValueError("schema 应为文本")
    return value  # the names themselves are judged by the model's clean (Mapping.from_dict), answering 400


class TargetIn(Schema):
    name: Line(60, required=True)
    system: Line(20)
    region: Line(20)  # region code
    vendor: Line(60) = ""
    description: Text(2000) = ""


class DatabaseIn(Schema):
    name: Line(40, required=True)
    dialect: Line(12)
    host: Line(120) = ""
    port: int | None = PORT
    database: Line(255, required=True)
    username: Line(60) = ""
    password: Line(256) = ""  # write-only: sealed, never returned
    read_only: bool = True
    timeout_s: int = Field(300, ge=limits.TIMEOUT_MIN, le=limits.TIMEOUT_MAX)
    as_of: date | None = None
    mapping: dict = {}

    _as_of = field_validator("as_of")(_in_range)
    _mapping = field_validator("mapping")(_mapping)
    _host = field_validator("host")(_host)


class ConnectionTest(Schema):
    """Values to test without saving them (absent fields are the stored ones). The stored password is used only when
    dialect, host, port, database and username are all unchanged; otherwise give the password to test with."""

    dialect: Line(12) | None = None
    host: Line(120) | None = None
    port: int | None = PORT
    database: Line(255, required=True) | None = None
    username: Line(60) | None = None
    password: Line(256) = ""
    timeout_s: int | None = TIMEOUT
    mapping: dict | None = None

    _mapping = field_validator("mapping")(_mapping)
    _host = field_validator("host")(_host)


class DatabasePatch(ConnectionTest):
    """Only the fields given change. An empty or absent password keeps the sealed one — but only while dialect, host,
    port, database and username stay the same: change any of them and give the password again (or clear_password)."""

    name: Line(40, required=True) | None = None
    clear_password: bool = False
    read_only: bool | None = None
    as_of: date | None = None

    _as_of = field_validator("as_of")(_in_range)


class ScopeIn(Schema):
    """范围: region codes, a budget year, a date range (all optional)."""

    model_config = ConfigDict(extra="forbid")

    regions: list[Line(20)] = []
    year: int | None = Field(None, ge=2000, le=2100)
    date_from: date | None = None
    date_to: date | None = None

    _dates = field_validator("date_from", "date_to")(_in_range)

    @model_validator(mode="after")
    def _order(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from（日期起）不能晚于 date_to（日期止）")
        return self


class RunIn(Schema):
    database: int = Field(..., gt=0, le=2**63 - 1)
    packs: Line(200) = "all"
    scope: ScopeIn = ScopeIn()
    sample: bool = True
    params: list[
        Line(200)
    ] = []  # e.g. ["BIZ-001.cutoff=5"]: a date parameter takes days before the as-of date


class ScheduleIn(Schema):
    cron: Line(60)
    packs: Line(200) = "all"
    sample: bool = True
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value):
        if problem := limits.cron_problem(value):
            raise ValueError(problem)
        return value


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
        "version": r.rule_version,  # 本地规则: the version that ran (None for a shipped rule)
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
        rule = shipped_rule(r.rule_id)
        if rule and rule.pair:  # 并排比较: both payments of each sampled pair, field by field
            out["pairs"] = pair_rows(rule, r.columns, r.sample)
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
def create_database(request, data: DatabaseIn, target_id: int = ID):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.database")
    target = get_object_or_404(services.visible_targets(request.user), pk=target_id)
    fields = data.dict(exclude={"password"})
    database = services.save_database(request.user, TargetDatabase(target=target, **fields), data.password)
    return _database_out(database)


@router.patch("/databases/{database_id}", summary="修改数据库连接（给出的字段才改；password 留空保持原密码）")
def change_database(request, data: DatabasePatch, database_id: int = ID):
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
        from caiwei.apierrors import explain

        detail, _ = explain([{**e, "loc": ("body", "data", *e["loc"])} for e in exc.errors()])
        raise ValidationError(detail) from exc


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
def test_database(request, database_id: int = ID):
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
def create_schedule(request, data: ScheduleIn, database_id: int = ID):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.schedule")
    database = get_object_or_404(services.visible_databases(request.user), pk=database_id)
    schedule = services.save_schedule(request.user, CheckSchedule(database=database, **data.dict()))
    return _schedule_out(schedule)


class ScheduleChangeIn(Schema):
    action: Literal["enable", "disable", "delete"]


@router.post("/schedules/{schedule_id}", summary="启用、停用或删除定时检查")
def change_schedule(request, data: ScheduleChangeIn, schedule_id: int = ID):
    ensure(request.user, Capability.MANAGE_TARGETS, "api:checks.schedule")
    schedule = get_object_or_404(services.visible_schedules(request.user), pk=schedule_id)
    services.change_schedule(
        request.user, schedule, enabled=data.action == "enable", delete=data.action == "delete"
    )
    return {"id": schedule_id, "action": data.action}


@router.post("/runs", summary="执行检查（后台任务）；scope 可含 regions、year、date_from、date_to")
def start_run(request, data: RunIn):
    ensure(request.user, Capability.CHECKS_RUN, "api:checks.run")
    database = get_object_or_404(services.visible_databases(request.user), pk=data.database)
    scope = data.scope.dict()
    unknown = [c for c in scope["regions"] if not Region.objects.filter(code=c).exists()]
    if unknown:
        raise ValidationError({"scope.regions": f"区划代码 {'、'.join(unknown)} 不存在"})
    run = services.start_run(request.user, database, data.packs, scope, data.sample, params=data.params)
    return _run_out(run, with_results=run.status == CheckRun.Status.DONE)


@router.get("/runs", summary="检查记录")
def runs(request, database: int | None = Query(None, gt=0, le=2**63 - 1), limit: int = Query(50, ge=1)):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.runs")
    qs = services.visible_runs(request.user)
    if database:
        qs = qs.filter(database_id=database)
    return [_run_out(r) for r in qs[: min(limit, 500)]]


@router.get("/runs/{run_id}", summary="一次检查及各规则的结果（条数、金额、与上次比对）")
def run_detail(request, run_id: int = ID):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.run.detail")
    return _run_out(get_object_or_404(services.visible_runs(request.user), pk=run_id), with_results=True)


@router.get("/results/{result_id}", summary="一条规则的结果：主键、脱敏样本、列出全部问题的 SQL、比对与趋势")
def result_detail(request, result_id: int = ID):
    ensure(request.user, Capability.CHECKS_VIEW, "api:checks.result")
    result = get_object_or_404(services.visible_results(request.user), pk=result_id)
    return _result_out(result, full=True)


class TicketIn(Schema):
    model_config = ConfigDict(extra="forbid")
    severity: Line(4) = Field("", description="严重程度，缺省取规则的严重程度")
    assignee: Line(150) = Field("", description="分派给本区划的二线工程师（用户名），缺省不分派")


@router.post("/results/{result_id}/ticket", summary="由问题开工单（一条结果一张工单，重复调用返回同一张）")
def result_ticket(request, result_id: int = ID, data: TicketIn | None = None):
    result = get_object_or_404(services.visible_results(request.user), pk=result_id)
    data = data or TicketIn()
    assignee = None
    if data.assignee:
        engineers = services.ticket_engineers(result.run.database.target.region)
        assignee = engineers.filter(username=data.assignee).first()
        if assignee is None:
            raise ValidationError(f"assignee：“{data.assignee}”不是该区划的二线工程师")
    ticket = services.open_ticket(request.user, result, assignee=assignee, severity=data.severity or None)
    return {"ticket": ticket.number, "id": ticket.pk, "severity": ticket.severity}
