"""监控 over HTTP (/api/monitor/…): the inventory (list, register, change, probe now, results), alerts, rules,
maintenance windows, the board and the Prometheus text of every visible item's last value and state. The same
services and region scoping as the pages."""

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.desk.models import SYSTEMS
from caiwei.inputs import Line
from caiwei.regions.scoping import visible_regions

from . import probes, services
from .models import Alert, AlertRule, Item, MaintenanceWindow

router = Router(tags=["监控"])
ID = Path(..., gt=0, le=2**63 - 1)


def _item_out(item: Item) -> dict[str, Any]:
    return {
        "id": item.pk,
        "region": item.region.code,
        "region_name": item.region.name,
        "system": item.system,
        "name": item.name,
        "kind": item.kind,
        "kind_label": item.get_kind_display(),
        "category": item.category_label,
        "target_database": item.target_database_id,
        "config": item.config,
        "has_secret": bool(item.secret),
        "interval_s": item.interval_s,
        "timeout_s": item.timeout_s,
        "calendar": item.calendar,
        "enabled": item.enabled,
        "state": item.state,
        "state_label": item.get_state_display(),
        "last_at": item.last_at,
        "last_ok": item.last_ok,
        "last_value": item.last_value,
        "last_message": item.last_message,
        "last_metrics": item.last_metrics,
    }


def _result_out(result: probes.ProbeResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "metrics": result.metrics,
        "message": result.message,
        "latency_ms": result.latency_ms,
        "at": result.at,
    }


class ItemIn(Schema):
    region: Line(20) = Field(..., description="区划代码")
    system: Line(20) = Field(...)
    name: Line(80) = Field(..., min_length=1)
    kind: Line(12) = Field(..., description="、".join(probes.KINDS))
    target_database: int | None = Field(None, gt=0, le=2**63 - 1)
    config: dict = Field(default_factory=dict)
    secret: str = Field("", max_length=2000, description="密码或令牌（只写，加密保存）")
    interval_s: int = Field(60, ge=10, le=86400)
    timeout_s: int = Field(10, ge=1, le=120)
    calendar: Line(30) = Field("workday")
    enabled: bool = True


class ItemChange(Schema):
    name: Line(80) | None = Field(None, min_length=1)
    config: dict | None = None
    secret: str | None = Field(None, max_length=2000)
    interval_s: int | None = Field(None, ge=10, le=86400)
    timeout_s: int | None = Field(None, ge=1, le=120)
    enabled: bool | None = None


def _region(user, code: str):
    region = visible_regions(user).filter(code=code.strip()).first()
    if region is None:
        raise ValidationError({"region": f"区划“{code}”不存在或不在您的授权范围内"})
    return region


@router.get("/items", summary="监控清单（按授权区划），可按类型、状态筛选")
def items(request, kind: str = Query("", max_length=12), state: str = Query("", max_length=10)):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.items")
    qs = services.visible_items(request.user)
    if kind:
        qs = qs.filter(kind=kind)
    if state:
        qs = qs.filter(state=state)
    return [_item_out(i) for i in qs[:2000]]


@router.post("/items", response={201: dict}, summary="登记监控项；心跳类型的回应含心跳令牌（只给这一次）")
def create_item(request, data: ItemIn):
    ensure(request.user, Capability.MONITOR_MANAGE, "api:monitor.item")
    if data.system not in SYSTEMS:
        raise ValidationError({"system": f"系统“{data.system}”不在系统列表中"})
    if data.kind not in probes.KINDS:
        raise ValidationError({"kind": f"未知的类型“{data.kind}”，可选：{'、'.join(probes.KINDS)}"})
    item = Item(
        region=_region(request.user, data.region),
        system=data.system,
        name=data.name.strip(),
        kind=data.kind,
        target_database_id=data.target_database,
        config=data.config,
        interval_s=data.interval_s,
        timeout_s=data.timeout_s,
        calendar=data.calendar,
        enabled=data.enabled,
    )
    item, token = services.save_item(request.user, item, secret=data.secret)
    out = _item_out(item)
    if token:
        out["heartbeat_token"] = token
        out["heartbeat_url"] = request.build_absolute_uri(f"/monitor/hb/{token}")
    return Status(201, out)


@router.get("/items/{item_id}", summary="一个监控项及其最近结果")
def item_detail(request, item_id: int = ID):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.item")
    return _item_out(get_object_or_404(services.visible_items(request.user), pk=item_id))


@router.put("/items/{item_id}", summary="修改监控项（只改给出的字段；secret 为空串则清除）")
def change_item(request, data: ItemChange, item_id: int = ID):
    ensure(request.user, Capability.MONITOR_MANAGE, "api:monitor.item")
    item = get_object_or_404(services.visible_items(request.user), pk=item_id)
    for field in ("name", "config", "interval_s", "timeout_s", "enabled"):
        value = getattr(data, field)
        if value is not None:
            setattr(item, field, value)
    item, _ = services.save_item(request.user, item, secret=data.secret or "", clear_secret=data.secret == "")
    return _item_out(item)


@router.post("/items/{item_id}/run", summary="立即探测（结果照常保存并判定告警）")
def run_item(request, item_id: int = ID):
    ensure(request.user, Capability.MONITOR_MANAGE, "api:monitor.run")
    item = get_object_or_404(services.visible_items(request.user), pk=item_id)
    return _result_out(services.run_item_now(item))


@router.get("/items/{item_id}/results", summary="探测历史：最近若干小时的原始结果与按小时归并的结果")
def item_results(request, item_id: int = ID, hours: int = Query(48, ge=1, le=24 * 400)):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.results")
    item = get_object_or_404(services.visible_items(request.user), pk=item_id)
    return {"item": item.pk, "hours": hours, "points": services.history(item, hours)}


@router.get("/alerts", summary="告警（默认只列未恢复的；status=all 含已恢复）")
def alerts(request, status: str = Query("open", max_length=10)):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.alerts")
    qs = services.visible_alerts(request.user)
    if status != "all":
        qs = qs.filter(status=Alert.Status.OPEN)
    return [
        {
            "id": a.pk,
            "item": a.item_id,
            "item_name": a.item.name,
            "region": a.item.region.code,
            "rule": a.rule.name,
            "severity": a.severity,
            "status": a.status,
            "opened_at": a.opened_at,
            "resolved_at": a.resolved_at,
            "hits": a.hits,
            "value": a.value,
            "message": a.message,
            "ticket": a.ticket.number if a.ticket_id else None,
        }
        for a in qs[:1000]
    ]


class RuleIn(Schema):
    name: Line(60) = Field(..., min_length=1)
    region: Line(20) = Field("", description="留空为全辖")
    kind: Line(12) = Field("")
    metric: Line(30) = Field(...)
    op: Line(2) = Field(..., description="> >= < <= = !=")
    threshold: float
    severity: Line(4) = Field("一般")
    open_after: int = Field(2, ge=1, le=100)
    resolve_after: int = Field(2, ge=1, le=100)
    open_ticket: bool = True
    enabled: bool = True


def _rule_out(r: AlertRule) -> dict:
    return {
        "id": r.pk,
        "name": r.name,
        "region": r.region.code if r.region_id else "",
        "kind": r.kind,
        "metric": r.metric,
        "op": r.op,
        "threshold": r.threshold,
        "severity": r.severity,
        "open_after": r.open_after,
        "resolve_after": r.resolve_after,
        "open_ticket": r.open_ticket,
        "enabled": r.enabled,
    }


@router.get("/rules", summary="告警规则")
def rules(request):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.rules")
    return [_rule_out(r) for r in services.visible_rules(request.user)]


@router.post("/rules", response={201: dict}, summary="新增告警规则")
def create_rule(request, data: RuleIn):
    ensure(request.user, Capability.MONITOR_MANAGE, "api:monitor.rule")
    rule = AlertRule(
        name=data.name,
        region=_region(request.user, data.region) if data.region else None,
        kind=data.kind,
        metric=data.metric,
        op=data.op,
        threshold=data.threshold,
        severity=data.severity,
        open_after=data.open_after,
        resolve_after=data.resolve_after,
        open_ticket=data.open_ticket,
        enabled=data.enabled,
    )
    return Status(201, _rule_out(services.save_rule(request.user, rule)))


class WindowIn(Schema):
    region: Line(20) = Field(...)
    reason: Line(120) = Field(..., min_length=1)
    system: Line(20) = Field("")
    items: list[int] = Field(default_factory=list, max_length=1000)
    starts_at: datetime
    ends_at: datetime


def _window_out(w: MaintenanceWindow) -> dict:
    return {
        "id": w.pk,
        "region": w.region.code,
        "reason": w.reason,
        "system": w.system,
        "items": [i.pk for i in w.items.all()],
        "starts_at": w.starts_at,
        "ends_at": w.ends_at,
    }


@router.get("/windows", summary="维护窗口")
def windows(request):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.windows")
    return [_window_out(w) for w in services.visible_windows(request.user).prefetch_related("items")[:500]]


@router.post("/windows", response={201: dict}, summary="新增维护窗口（窗口内不告警）")
def create_window(request, data: WindowIn):
    ensure(request.user, Capability.MONITOR_MANAGE, "api:monitor.window")
    if data.ends_at - data.starts_at > timedelta(days=31):
        raise ValidationError({"ends_at": "维护窗口最长 31 天"})
    chosen = list(
        services.visible_items(request.user).filter(pk__in=[i for i in data.items if 0 < i < 2**63])
    )
    if len(chosen) != len(set(data.items)):
        raise ValidationError({"items": "有监控项不存在或不在您的授权范围内"})
    window = MaintenanceWindow(
        region=_region(request.user, data.region),
        reason=data.reason,
        system=data.system,
        starts_at=data.starts_at
        if timezone.is_aware(data.starts_at)
        else timezone.make_aware(data.starts_at),
        ends_at=data.ends_at if timezone.is_aware(data.ends_at) else timezone.make_aware(data.ends_at),
    )
    return Status(201, _window_out(services.save_window(request.user, window, chosen)))


@router.get("/board", summary="状态总览：各状态的监控项数与未恢复告警数")
def board(request, region: str = Query("", max_length=20)):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.board")
    data = services.board(request.user, region)
    return {
        "total": data["total"],
        "counts": data["counts"],
        "open_alerts": data["open_alerts"],
        "regions": [
            {
                "region": r.code,
                "name": r.name,
                "systems": {
                    s: {
                        "counts": cell["counts"],
                        "total": cell["total"],
                        "problems": [
                            {"id": i.pk, "name": i.name, "state": i.state} for i in cell["problems"]
                        ],
                    }
                    for s, cell in systems.items()
                },
            }
            for r, systems in data["grouped"].items()
        ],
    }


@router.get(
    "/metrics",
    summary="Prometheus 文本格式的各监控项最近值与状态（Authorization: Bearer <令牌>，或登录会话）",
    response={200: str},
)
def metrics(request):
    ensure(request.user, Capability.MONITOR_VIEW, "api:monitor.metrics")
    return HttpResponse(
        services.metrics_text(request.user), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
