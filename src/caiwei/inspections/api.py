"""巡检 over HTTP (/api/inspections/…): plans and their items, the calendar of due slots, generating due runs,
runs with their items, recording a manual result, finishing, and the Word report. The same services and region
scoping as the pages."""

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.desk.models import SYSTEMS
from caiwei.inputs import Line, Text
from caiwei.regions.scoping import visible_regions

from . import report, services, slots
from .models import KIND_LABELS, Plan, PlanItem, Run

router = Router(tags=["巡检"])
ID = Path(..., gt=0, le=2**63 - 1)


def _plan_out(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.pk,
        "region": plan.region.code,
        "region_name": plan.region.name,
        "system": plan.system,
        "name": plan.name,
        "valid_from": plan.valid_from,
        "valid_until": plan.valid_until,
        "calendar": plan.calendar,
        "grace_minutes": plan.grace_minutes,
        "enabled": plan.enabled,
        "items": [
            {
                "id": i.pk,
                "name": i.name,
                "kind": i.kind,
                "kind_label": i.get_kind_display(),
                "frequency": i.frequency,
                "times": i.times,
                "weekday": i.weekday,
                "nth": i.nth,
                "key_frequency": i.key_frequency,
                "key_times": i.key_times,
                "frequency_label": i.frequency_label(),
                "monitor_items": [m.pk for m in i.monitor_items.all()],
                "database": i.database_id,
            }
            for i in plan.items.all()
        ],
    }


def _run_out(run: Run, items: bool = True) -> dict[str, Any]:
    out = {
        "id": run.pk,
        "plan": run.plan_id,
        "plan_name": run.plan.name,
        "slot": run.slot,
        "deadline": run.deadline,
        "status": run.status,
        "state": run.state(),
        "finished_at": run.finished_at,
        "on_time": run.on_time,
        "conclusion": run.conclusion,
    }
    if items:
        out["items"] = [
            {
                "id": i.pk,
                "name": i.name,
                "kind": i.kind,
                "result": i.result,
                "result_label": i.get_result_display(),
                "notes": i.notes,
                "evidence": i.evidence,
                "checked_at": i.checked_at,
                "ticket": i.ticket.number if i.ticket_id else None,
            }
            for i in run.items.select_related("ticket")
        ]
    return out


class PlanIn(Schema):
    region: Line(20) = Field(..., description="区划代码")
    system: Line(20) = Field(...)
    name: Line(80, required=True) = Field(...)
    valid_from: date
    valid_until: date | None = None
    calendar: Line(40) = "workday"
    grace_minutes: int = Field(120, ge=0, le=10080)
    enabled: bool = True


class ItemIn(Schema):
    name: Line(80, required=True) = Field(...)
    kind: Line(10) = Field(..., description="、".join(KIND_LABELS))
    frequency: Line(10) = Field("daily", description="daily 每个工作日、weekly 每周、monthly 每月")
    times: Line(60) = Field("09:00", description="如 09:00,15:00")
    weekday: int = Field(0, ge=0, le=6)
    nth: int = Field(1, ge=1, le=23)
    key_frequency: Line(10) = ""
    key_times: Line(60) = ""
    key_codes: Line(200) = ""
    monitor_items: list[int] = Field(default_factory=list, max_length=200)
    database: int | None = Field(None, gt=0, le=2**63 - 1)
    packs: Line(200) = "all"
    instructions: Text(2000) = ""


class ResultIn(Schema):
    result: Line(10) = Field(..., description="ok 正常、abnormal 异常")
    notes: Text(4000) = ""


class FinishIn(Schema):
    conclusion: Text(4000) = ""


@router.get("/plans", summary="巡检计划（按授权区划）")
def plans(request):
    ensure(request.user, Capability.INSPECT_VIEW, "api:inspections.plans")
    return [
        _plan_out(p) for p in services.visible_plans(request.user).prefetch_related("items__monitor_items")
    ]


@router.post("/plans", response={201: dict}, summary="新建巡检计划")
def create_plan(request, data: PlanIn):
    ensure(request.user, Capability.INSPECT_PLAN, "api:inspections.plan")
    if data.system not in SYSTEMS:
        raise ValidationError({"system": f"系统“{data.system}”不在系统列表中"})
    region = visible_regions(request.user).filter(code=data.region.strip()).first()
    if region is None:
        raise ValidationError({"region": f"区划“{data.region}”不存在或不在您的授权范围内"})
    plan = Plan(
        region=region,
        system=data.system,
        name=data.name.strip(),
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        calendar=data.calendar,
        grace_minutes=data.grace_minutes,
        enabled=data.enabled,
    )
    return Status(201, _plan_out(services.save_plan(request.user, plan)))


@router.get("/plans/{plan_id}", summary="一个巡检计划及其巡检项")
def plan_detail(request, plan_id: int = ID):
    ensure(request.user, Capability.INSPECT_VIEW, "api:inspections.plan")
    return _plan_out(get_object_or_404(services.visible_plans(request.user), pk=plan_id))


@router.post("/plans/{plan_id}/items", response={201: dict}, summary="给巡检计划添加巡检项")
def add_item(request, data: ItemIn, plan_id: int = ID):
    ensure(request.user, Capability.INSPECT_PLAN, "api:inspections.item")
    plan = get_object_or_404(services.visible_plans(request.user), pk=plan_id)
    if data.kind not in KIND_LABELS:
        raise ValidationError({"kind": f"未知的方式“{data.kind}”，可选：{'、'.join(KIND_LABELS)}"})
    for field, value in (("frequency", data.frequency), ("key_frequency", data.key_frequency)):
        if value and value not in slots.KINDS:
            raise ValidationError({field: f"未知的频次“{value}”，可选：{'、'.join(slots.KINDS)}"})
    item = PlanItem(
        plan=plan,
        name=data.name.strip(),
        kind=data.kind,
        frequency=data.frequency,
        times=data.times,
        weekday=data.weekday,
        nth=data.nth,
        key_frequency=data.key_frequency,
        key_times=data.key_times,
        key_codes=data.key_codes,
        database_id=data.database,
        packs=data.packs,
        instructions=data.instructions,
        position=plan.items.count(),
    )
    services.save_item(request.user, item, data.monitor_items if data.kind == "probe" else None)
    return Status(201, _plan_out(plan))


@router.get(
    "/calendar",
    summary="巡检日历：各到期巡检的应巡检时间与状态（按时完成、逾期完成、逾期未完成、进行中、待巡检）",
)
def calendar(request, start: date | None = None, days: int = Query(7, ge=1, le=62)):
    ensure(request.user, Capability.INSPECT_VIEW, "api:inspections.calendar")
    first = start or timezone.localdate()
    now = timezone.now()
    return [
        {
            "plan": s.plan.pk,
            "plan_name": s.plan.name,
            "slot": s.at,
            "deadline": s.deadline,
            "items": [i.name for i in s.items],
            "run": s.run.pk if s.run else None,
            "state": s.state(now),
            "state_label": services.STATE_LABELS[s.state(now)][0],
        }
        for s in services.schedule(request.user, first, first + timedelta(days=days - 1))
    ]


@router.post("/tick", summary="生成已到期的巡检（每个到期时间只生成一次）")
def tick(request):
    ensure(request.user, Capability.INSPECT_RUN, "api:inspections.tick")
    created = services.tick(plans=services.visible_plans(request.user))
    return {"created": [r.pk for r in created]}


@router.get("/runs", summary="巡检记录（按授权区划，最近 200 次）")
def runs(request, plan: int | None = Query(None, gt=0, le=2**63 - 1)):
    ensure(request.user, Capability.INSPECT_VIEW, "api:inspections.runs")
    qs = services.visible_runs(request.user)
    if plan:
        qs = qs.filter(plan_id=plan)
    return [_run_out(r, items=False) for r in qs[:200]]


@router.get("/runs/{run_id}", summary="一次巡检及各巡检项结果")
def run_detail(request, run_id: int = ID):
    ensure(request.user, Capability.INSPECT_VIEW, "api:inspections.run")
    return _run_out(get_object_or_404(services.visible_runs(request.user), pk=run_id))


@router.post("/runs/{run_id}/items/{item_id}", summary="登记人工巡检项的结果（截图请在页面上传）")
def record(request, data: ResultIn, run_id: int = ID, item_id: int = ID):
    ensure(request.user, Capability.INSPECT_RUN, "api:inspections.record")
    run = get_object_or_404(services.visible_runs(request.user), pk=run_id)
    item = get_object_or_404(run.items, pk=item_id)
    services.record_manual(request.user, item, data.result, data.notes)
    run.refresh_from_db()
    return _run_out(run)


@router.post("/runs/{run_id}/finish", summary="填写巡检结论并完成巡检")
def finish(request, data: FinishIn, run_id: int = ID):
    ensure(request.user, Capability.INSPECT_RUN, "api:inspections.finish")
    run = get_object_or_404(services.visible_runs(request.user), pk=run_id)
    return _run_out(services.finish(request.user, run, data.conclusion))


@router.get("/runs/{run_id}/report", summary="巡检报告（Word）")
def run_report(request, run_id: int = ID):
    ensure(request.user, Capability.INSPECT_VIEW, "api:inspections.report")
    run = get_object_or_404(services.visible_runs(request.user), pk=run_id)
    response = HttpResponse(report.render_docx(run), content_type=report.DOCX)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(report.file_name(run))}"
    return response
