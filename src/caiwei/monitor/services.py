"""监控 services: region-scoped lists, the inventory's changes (audited, secrets sealed), running probes and storing
their results, alerts that open and resolve one incident ticket, notifications and group robots, roll-ups, the
heartbeat route and the /metrics text.

For the inspection part: ``run_item_now(item)`` probes one item now and returns its ``ProbeResult`` (stored and
judged like a scheduled one); ``latest_results(items)`` gives the last result of each item without probing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability, Role
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from . import alerts as engine
from . import probes
from .models import Alert, AlertRule, Item, MaintenanceWindow, Result, Rollup, State, Webhook

log = logging.getLogger(__name__)
SEVERITY_RANK = {"一般": 0, "紧急": 1, "重大": 2}


def raw_hours() -> int:
    return int(getattr(settings, "CAIWEI_MONITOR_RAW_HOURS", 48))


def rollup_days() -> int:
    return int(getattr(settings, "CAIWEI_MONITOR_ROLLUP_DAYS", 400))


# --- what a user may reach ---------------------------------------------------------------------------------------


def visible_items(user):
    return Item.objects.visible_to(user).select_related("region", "target_database")


def visible_rules(user):
    """Rules of the user's regions and the rules for all regions (region empty)."""
    regions = visible_regions(user).values("pk")
    if not user or not user.is_authenticated:
        return AlertRule.objects.none()
    return AlertRule.objects.filter(Q(region__in=regions) | Q(region__isnull=True)).select_related("region")


def visible_windows(user):
    return MaintenanceWindow.objects.visible_to(user).select_related("region")


def visible_alerts(user):
    return Alert.objects.filter(item__in=Item.objects.visible_to(user)).select_related(
        "item", "item__region", "rule", "ticket"
    )


def visible_webhooks(user):
    return Webhook.objects.visible_to(user).select_related("region")


def covers_everything(user) -> bool:
    from caiwei.web.admin_site import covers_whole_tree

    return covers_whole_tree(user)


def _own_region(user, region, what: str) -> None:
    if region is None:
        if not covers_everything(user):
            raise PermissionDenied(f"全辖{what}只能由授权覆盖全辖的人员维护")
        return
    if not visible_regions(user).filter(pk=region.pk).exists():
        raise PermissionDenied(f"无权在区划“{region.name}”维护{what}")


# --- inventory -----------------------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


CONFIG_FIELDS = {
    "http": {"url", "expect_status", "expect_text", "verify_tls", "encoding"},
    "tcp": {"host", "port"},
    "tls": {"host", "port", "server_name", "verify_tls"},
    "database": {"query"},
    "rabbitmq": {"api", "vhost", "queue", "username", "verify_tls"},
    "redis": {"host", "port", "username"},
    "sftp": {"host", "port", "username", "directory", "pattern", "host_key"},
    "ftp": {"host", "port", "username", "directory", "pattern", "tls"},
    "host": {"url", "mount", "verify_tls"},
    "host_ssh": {"host", "port", "username", "mount", "host_key"},
    "promql": {"api", "query", "empty_is_down", "verify_tls"},
    "freshness": {
        "source",
        "path",
        "bank",
        "direction",
        "mode",
        "window_minutes",
        "deadline",
        "min_count",
        "host",
        "port",
        "username",
        "directory",
        "pattern",
        "host_key",
        "tls",
    },
    "sequence": {"path", "bank", "direction"},
    "heartbeat": {"period_s", "grace_s"},
}
REQUIRED = {
    "http": ("url",),
    "tcp": ("host", "port"),
    "tls": ("host",),
    "rabbitmq": ("queue",),
    "sftp": ("host", "username"),
    "ftp": ("host",),
    "host_ssh": ("host", "username"),
    "promql": ("query",),
    "freshness": ("source",),
    "sequence": ("path",),
    "heartbeat": ("period_s",),
}


def file_root():
    """The only local directory whose files monitoring reads (message journals, dropped files); empty setting:
    VAR_DIR/monitor-files."""
    from pathlib import Path

    return Path(
        getattr(settings, "CAIWEI_MONITOR_FILE_DIR", "") or Path(settings.VAR_DIR) / "monitor-files"
    ).resolve()


def local_path(value: str, field: str) -> str:
    """``value`` resolved (links followed) and inside ``file_root()``; else a Chinese error naming the field."""
    from pathlib import Path

    root = file_root()
    try:
        resolved = Path(str(value)).resolve()
    except (OSError, ValueError, RuntimeError):
        raise ValidationError({"config": f"{field} 不是有效的路径"}) from None
    if resolved != root and root not in resolved.parents:
        raise ValidationError({"config": f"{field} 须位于本机监控文件目录 {root} 之内"})
    return str(resolved)


def _local_files_of(kind: str, config: dict) -> list[tuple[str, str]]:
    if kind == "sequence" or (kind == "freshness" and config.get("source") == "journal"):
        return [("path", str(config.get("path", "")))]
    if kind == "freshness" and config.get("source") == "dir":
        return [("directory", str(config.get("directory", "")))]
    return []


def check_config(kind: str, config) -> dict:
    """The item's settings as a JSON object with only the keys of its kind; Chinese errors naming the field."""
    if not isinstance(config, dict):
        raise ValidationError({"config": '探测设置应为 JSON 对象，如 {"url": "https://…"}'})
    unknown = set(config) - CONFIG_FIELDS.get(kind, set())
    if unknown:
        raise ValidationError(
            {"config": f"“{probes.KINDS.get(kind, kind)}”不认识这些设置：{'、'.join(sorted(unknown))}"}
        )
    missing = [k for k in REQUIRED.get(kind, ()) if config.get(k) in (None, "")]
    if missing:
        raise ValidationError({"config": f"缺少设置：{'、'.join(missing)}"})
    for key in ("port", "window_minutes", "min_count", "period_s", "grace_s"):
        if key in config:
            try:
                number = int(config[key])
            except (TypeError, ValueError):
                raise ValidationError({"config": f"{key} 应为整数"}) from None
            if number < 0 or (key == "port" and not 1 <= number <= 65535):
                raise ValidationError({"config": f"{key} 超出范围"})
    for key, value in config.items():
        if isinstance(value, str) and ("\x00" in value or len(value) > 2000):
            raise ValidationError({"config": f"{key} 含空字符或过长"})
    for field, value in _local_files_of(kind, config):
        if not value:
            raise ValidationError({"config": f"缺少设置：{field}"})
        local_path(value, field)
    if kind == "freshness":
        if config.get("source") not in ("journal", "dir", "sftp", "ftp"):
            raise ValidationError({"config": "source 应为 journal（报文日志）、dir、sftp 或 ftp"})
        if config.get("mode", "window") not in ("window", "daily"):
            raise ValidationError({"config": "mode 应为 window（窗口内有报文）或 daily（每日文件）"})
        if config.get("deadline"):
            try:
                datetime.strptime(str(config["deadline"]), "%H:%M")
            except ValueError:
                raise ValidationError({"config": "deadline 应为 时:分，如 10:00"}) from None
    return config


@transaction.atomic
def save_item(user, item: Item, *, secret: str = "", clear_secret: bool = False) -> tuple[Item, str]:
    """Create or change an item; returns it and, for a new heartbeat item, its ping token (shown once)."""
    ensure(user, Capability.MONITOR_MANAGE, "monitor.item")
    _own_region(user, item.region if item.region_id else None, "监控项")
    stored = Item.objects.filter(pk=item.pk).first() if item.pk else None
    if stored is not None and not visible_items(user).filter(pk=stored.pk).exists():
        raise PermissionDenied("无权修改该监控项")
    if stored is not None:  # sealed values never come from a form or a body
        item.secret, item.heartbeat_hash, item.uid = stored.secret, stored.heartbeat_hash, stored.uid
    if item.target_database_id:
        from caiwei.checks.services import visible_databases

        if not visible_databases(user).filter(pk=item.target_database_id).exists():
            raise ValidationError({"target_database": "该数据库不存在或不在您的授权范围内"})
    item.config = check_config(item.kind, item.config)
    if clear_secret:
        item.secret = ""
    elif secret:
        item.set_secret(secret)
    token = ""
    if item.kind == "heartbeat" and not item.heartbeat_hash:
        token = secrets.token_urlsafe(24)
        item.heartbeat_hash = hash_token(token)
    if item.kind == "freshness":
        from caiwei.bizcalendar.models import BusinessCalendar

        if not BusinessCalendar.objects.filter(code=item.calendar).exists():
            raise ValidationError({"calendar": f"业务日历“{item.calendar}”不存在"})
    if item.created_by_id is None:
        item.created_by = user
    item.full_clean()
    item.next_due_at = timezone.now()
    item.save()
    if secret or token:
        record(
            AuditAction.UPDATE,
            obj=item,
            detail={
                "action": "设置监控项凭据（加密保存，不记内容）",
                "secret": bool(secret),
                "token": bool(token),
            },
        )
    return item, token


@transaction.atomic
def new_heartbeat_token(user, item: Item) -> str:
    ensure(user, Capability.MONITOR_MANAGE, "monitor.item")
    if item.kind != "heartbeat" or not visible_items(user).filter(pk=item.pk).exists():
        raise PermissionDenied("无权修改该监控项")
    token = secrets.token_urlsafe(24)
    Item.objects.filter(pk=item.pk).update(heartbeat_hash=hash_token(token))
    record(AuditAction.UPDATE, obj=item, detail={"action": "重新生成心跳令牌（旧令牌作废）"})
    return token


@transaction.atomic
def delete_item(user, item: Item) -> None:
    ensure(user, Capability.MONITOR_MANAGE, "monitor.item")
    if not visible_items(user).filter(pk=item.pk).exists():
        raise PermissionDenied("无权删除该监控项")
    item.delete()


@transaction.atomic
def save_rule(user, rule: AlertRule) -> AlertRule:
    ensure(user, Capability.MONITOR_MANAGE, "monitor.rule")
    _own_region(user, rule.region if rule.region_id else None, "告警规则")
    if rule.pk:
        stored = AlertRule.objects.select_related("region").get(pk=rule.pk)
        _own_region(user, stored.region, "告警规则")
    if rule.metric not in probes.METRIC_LABELS:
        raise ValidationError(
            {"metric": f"未知的指标“{rule.metric}”，可选：{'、'.join(probes.METRIC_LABELS)}"}
        )
    rule.full_clean()
    rule.save()
    return rule


@transaction.atomic
def save_window(user, window: MaintenanceWindow, items: Iterable[Item] = ()) -> MaintenanceWindow:
    ensure(user, Capability.MONITOR_MANAGE, "monitor.window")
    _own_region(user, window.region if window.region_id else None, "维护窗口")
    if window.pk and not visible_windows(user).filter(pk=window.pk).exists():
        raise PermissionDenied("无权修改该维护窗口")
    items = list(items)
    foreign = [i for i in items if i.region_id and not i.region.path.startswith(window.region.path)]
    if foreign:
        raise ValidationError({"items": "所选监控项须属于该区划（含下级）"})
    if window.created_by_id is None:
        window.created_by = user
    window.full_clean()
    window.save()
    window.items.set(items)
    return window


@transaction.atomic
def delete_window(user, window: MaintenanceWindow) -> None:
    ensure(user, Capability.MONITOR_MANAGE, "monitor.window")
    if not visible_windows(user).filter(pk=window.pk).exists():
        raise PermissionDenied("无权删除该维护窗口")
    window.delete()


@transaction.atomic
def save_webhook(user, hook: Webhook, url: str = "") -> Webhook:
    ensure(user, Capability.MONITOR_MANAGE, "monitor.webhook")
    _own_region(user, hook.region if hook.region_id else None, "群机器人")
    if hook.pk:
        stored = Webhook.objects.get(pk=hook.pk)
        if not visible_webhooks(user).filter(pk=stored.pk).exists():
            raise PermissionDenied("无权修改该群机器人")
        hook.secret, hook.uid = stored.secret, stored.uid
    if url:
        if not url.startswith(("http://", "https://")) or len(url) > 1000 or any(ord(c) < 33 for c in url):
            raise ValidationError({"url": "机器人地址应为 http:// 或 https:// 开头的网址"})
        hook.set_url(url)
    elif not hook.secret:
        raise ValidationError({"url": "请填写机器人地址"})
    hook.full_clean()
    hook.save()
    if url:
        record(AuditAction.UPDATE, obj=hook, detail={"action": "设置机器人地址（加密保存，不记内容）"})
    return hook


def ensure_default_rules() -> int:
    """The starting rules (alerts.DEFAULT_RULES), for all regions, when none exist yet."""
    if AlertRule.objects.exists():
        return 0
    for name, kind, metric, op, threshold, severity, n, m in engine.DEFAULT_RULES:
        AlertRule.objects.create(
            name=name,
            kind=kind,
            metric=metric,
            op=op,
            threshold=threshold,
            severity=severity,
            open_after=n,
            resolve_after=m,
        )
    return len(engine.DEFAULT_RULES)


# --- probing -------------------------------------------------------------------------------------------------------

_CALENDARS: dict[str, tuple[float, object]] = {}


def calendar_spec(code: str):
    """The CalendarSpec of a business calendar, cached for a minute (the scheduler builds many probes)."""
    import time

    cached = _CALENDARS.get(code)
    if cached and time.monotonic() - cached[0] < 60:
        return cached[1]
    from caiwei.bizcalendar.models import BusinessCalendar

    calendar = BusinessCalendar.objects.prefetch_related("days").filter(code=code).first()
    if calendar is None:
        raise probes.ProbeError(f"业务日历“{code}”不存在")
    spec = calendar.spec()
    _CALENDARS[code] = (time.monotonic(), spec)
    return spec


def build_probe(item: Item, now: datetime | None = None) -> probes.Probe:
    config = dict(item.config or {})
    for field, value in _local_files_of(item.kind, config):
        try:
            config[field] = local_path(
                value, field
            )  # judged again at each probe: links and the root may change
        except ValidationError as exc:
            raise probes.ProbeError("；".join(m for ms in exc.message_dict.values() for m in ms)) from None
    secret = item.unsealed_secret() if item.secret else ""
    if item.kind == "database":
        db = item.target_database
        if db.dialect == db.Dialect.SQLITE:
            from caiwei.checks import sqlitefile

            sqlitefile.resolve(db.database)  # judged again at each connection, as the data checks do
        config["url"] = db.url()
    elif item.kind == "freshness":
        config["calendar"] = calendar_spec(item.calendar)
        if now is not None:
            config["now"] = now
    elif item.kind == "heartbeat":
        # the ping is written by the web server while a scheduler may hold this item for minutes: read it now
        last_ping = Item.objects.filter(pk=item.pk).values_list("last_ping_at", flat=True).first()
        config.update(last_ping=last_ping, since=item.created_at, now=now)
    return probes.Probe(item.kind, config, secret, float(item.timeout_s), key=item.pk)


def _probe_or_failure(item: Item, now: datetime | None) -> probes.Probe | probes.ProbeResult:
    try:
        return build_probe(item, now)
    except Exception as exc:  # noqa: BLE001 — a secret that no longer unseals, a missing calendar…
        return probes.ProbeResult(False, {"up": 0}, f"无法探测：{exc}", key=item.pk)


def probe_items(
    items: list[Item], now: datetime | None = None, concurrency: int = 50
) -> list[probes.ProbeResult]:
    built = [_probe_or_failure(i, now) for i in items]
    runnable = [b for b in built if isinstance(b, probes.Probe)]
    ran = iter(probes.run_blocking(lambda: probes.run_many(runnable, concurrency)) if runnable else [])
    return [b if isinstance(b, probes.ProbeResult) else next(ran) for b in built]


def run_item_now(item: Item, now: datetime | None = None) -> probes.ProbeResult:
    """Probe one item now, store the result and judge it against the rules (for the inspections, the pages)."""
    result = probe_items([item], now)[0]
    record_results([result], {item.pk: item}, now=now)
    return result


def latest_results(items: Iterable[Item]) -> dict[int, probes.ProbeResult | None]:
    """The last result of each item (None when never probed), without probing."""
    out: dict[int, probes.ProbeResult | None] = {}
    for item in items:
        if item.last_at is None:
            out[item.pk] = None
            continue
        out[item.pk] = probes.ProbeResult(
            bool(item.last_ok), dict(item.last_metrics or {}), item.last_message, None, item.last_at, item.pk
        )
    return out


def run_due(now: datetime | None = None, limit: int = 500, concurrency: int = 50) -> int:
    """Probe the enabled items whose time has come (the worker's tick calls this each minute)."""
    now = now or timezone.now()
    due = list(
        Item.objects.filter(enabled=True)
        .filter(Q(next_due_at__lte=now) | Q(next_due_at__isnull=True))
        .select_related("region", "target_database")
        .order_by("next_due_at")[:limit]
    )
    if not due:
        return 0
    results = probe_items(due, concurrency=concurrency)
    record_results(results, {i.pk: i for i in due})
    return len(due)


# --- storing results and judging them ------------------------------------------------------------------------------


def _silenced_items(items: list[Item], now: datetime) -> set[int]:
    windows = list(
        MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now)
        .select_related("region")
        .prefetch_related("items")
    )
    if not windows:
        return set()
    out = set()
    for w in windows:
        chosen = {i.pk for i in w.items.all()}
        for item in items:
            if chosen:
                hit = item.pk in chosen
            else:
                hit = item.region.path.startswith(w.region.path) and (not w.system or w.system == item.system)
            if hit:
                out.add(item.pk)
    return out


def _rules_for(rules: list[AlertRule], item: Item) -> list[AlertRule]:
    return [
        r
        for r in rules
        if (not r.kind or r.kind == item.kind)
        and (r.region_id is None or item.region.path.startswith(r.region.path))
    ]


def record_results(
    results: list[probes.ProbeResult], items: dict[int, Item], now: datetime | None = None
) -> None:
    """Store a batch of results (one INSERT), move each item's state on, and open or resolve alerts."""
    if not results:
        return
    stamp = now or timezone.now()
    Result.objects.bulk_create(
        [
            Result(
                item_id=r.key,
                at=r.at if now is None else now,
                ok=r.ok,
                value=r.primary(items[r.key].kind),
                latency_ms=r.latency_ms,
                message="" if r.ok else r.message[:200],
            )
            for r in results
        ]
    )
    batch = [items[r.key] for r in results]
    rules = list(AlertRule.objects.filter(enabled=True).select_related("region"))
    silenced = _silenced_items(batch, stamp)
    open_alerts = defaultdict(dict)
    for alert in Alert.objects.filter(
        status=Alert.Status.OPEN, item_id__in=[i.pk for i in batch]
    ).select_related("rule", "ticket"):
        open_alerts[alert.item_id][alert.rule_id] = alert
    for result in results:
        item = items[result.key]
        _judge(item, result, _rules_for(rules, item), open_alerts[item.pk], item.pk in silenced, stamp)


def _judge(item: Item, result: probes.ProbeResult, rules, open_alerts: dict, silenced: bool, now) -> None:
    streaks = dict(item.streaks or {})
    metrics = dict(result.metrics)
    for rule in rules:
        plain = engine.Rule(
            rule.pk, rule.metric, rule.op, rule.threshold, rule.open_after, rule.resolve_after
        )
        saved = streaks.get(str(rule.pk), [0, 0])
        streak = engine.Streak(*saved)
        alert = open_alerts.get(rule.pk)
        action = engine.step(plain, streak, metrics, alert is not None, silenced)
        streaks[str(rule.pk)] = [streak.bad, streak.good]
        if action == engine.OPEN:
            open_alerts[rule.pk] = open_alert(item, rule, result, now)
        elif action == engine.RESOLVE:
            resolve_alert(alert, result, now)
            open_alerts.pop(rule.pk, None)
        elif alert is not None and plain.breached(metrics):
            Alert.objects.filter(pk=alert.pk).update(
                last_seen_at=now,
                hits=alert.hits + 1,
                value=metrics.get(rule.metric),
                message=result.message[:300],
            )
    if silenced:
        state = State.PAUSED
    elif not result.ok:
        state = State.DOWN
    elif open_alerts:
        state = State.ALERT
    else:
        state = State.OK
    fields = {
        "state": state,
        "last_at": now if result.at is None else result.at,
        "last_ok": result.ok,
        "last_value": result.primary(item.kind),
        "last_message": result.message[:300],
        "last_metrics": metrics,
        "streaks": streaks,
        "next_due_at": now + timedelta(seconds=item.interval_s),
    }
    Item.objects.filter(pk=item.pk).update(**fields)
    for k, v in fields.items():
        setattr(item, k, v)


def _metric_text(rule: AlertRule, value) -> str:
    label = probes.METRIC_LABELS.get(rule.metric, rule.metric)
    shown = "无" if value is None else f"{value:g}"
    return f"{label}为 {shown}（规则：{engine.describe(engine.Rule(rule.pk, rule.metric, rule.op, rule.threshold), label)}）"


def _actor(item: Item):
    """Who opens and works the ticket for the monitor: the item's registrant when they may, else an engineer or
    project manager of the item's region (or above)."""

    owner = item.created_by
    if (
        owner
        and owner.can(Capability.DESK_WORK)
        and visible_regions(owner).filter(pk=item.region_id).exists()
    ):
        return owner
    return responders(item).first()


def responders(item: Item):
    from caiwei.accounts.models import User

    ancestors = [item.region.path[: i + 1] for i, c in enumerate(item.region.path) if c == "/"]
    return (
        User.objects.filter(
            is_active=True,
            role_grants__role__in=[Role.ENGINEER, Role.PROJECT_MANAGER],
            regions__path__in=ancestors,
        )
        .distinct()
        .order_by("pk")
    )


def open_alert(item: Item, rule: AlertRule, result: probes.ProbeResult, now) -> Alert:
    value = result.metrics.get(rule.metric)
    text = _metric_text(rule, value)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                item=item,
                rule=rule,
                severity=rule.severity,
                opened_at=now,
                last_seen_at=now,
                value=value,
                message=f"{text}；{result.message}"[:300],
            )
    except IntegrityError:  # another worker opened it a moment ago: fold into that one
        return Alert.objects.get(item=item, rule=rule, status=Alert.Status.OPEN)
    ticket = None
    if rule.open_ticket:
        try:
            ticket = _ticket_for(alert, text, result)
        except (PermissionDenied, ValidationError) as exc:
            log.warning("monitor alert %s: no ticket (%s)", alert.pk, exc)
    if ticket is not None:
        Alert.objects.filter(pk=alert.pk).update(ticket=ticket)
        alert.ticket = ticket
    headline = f"【{rule.severity}告警】{item.region.name} {item.system} {item.name}：{rule.name}"
    _tell(item, rule.severity, f"{headline}。{text}。{result.message}", ticket)
    return alert


def _ticket_for(alert: Alert, text: str, result: probes.ProbeResult):
    """One incident ticket per item and rule: an earlier alert's ticket still open takes a comment instead."""
    from caiwei.desk import flow
    from caiwei.desk import services as desk
    from caiwei.desk.models import Ticket

    item, rule = alert.item, alert.rule
    actor = _actor(item)
    earlier = (
        Alert.objects.filter(item=item, rule=rule, ticket__status__in=sorted(flow.OPEN_STATUSES))
        .exclude(pk=alert.pk)
        .select_related("ticket")
        .order_by("-opened_at")
        .first()
    )
    body = (
        f"监控告警（{rule.name}）再次触发：{text}。探测结果：{result.message}"
        if earlier
        else f"监控项：{item.name}（{item.get_kind_display()}，{item.region.name}，{item.system}）\n"
        f"告警规则：{rule.name}，严重程度 {rule.severity}\n触发：{text}\n探测结果：{result.message}\n"
        f"告警恢复时本工单自动记录并置为已解决。"
    )
    if earlier:
        if actor is not None:  # a comment needs an author; with nobody in the region the open ticket stands
            desk.comment(actor, earlier.ticket, body, internal=True)
        return earlier.ticket
    fields = {
        "region": item.region,
        "channel": Ticket.Channel.INSPECTION,
        "system": item.system,
        "module": "监控告警",
        "requester_kind": Ticket.RequesterKind.INTERNAL,
        "ticket_type": "故障",
        "severity": rule.severity,
        "title": f"监控告警：{item.name} {rule.name}"[:120],
        "description": body,
        "requester_name": "监控告警",
    }
    if actor is None:  # nobody registered it and no engineer in the region: the platform opens it itself
        return desk.system_ticket(**fields)
    return desk.create_ticket(actor, **fields)


def resolve_alert(alert: Alert, result: probes.ProbeResult, now) -> None:
    from caiwei.desk import flow
    from caiwei.desk import services as desk

    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED, resolved_at=now)
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    item, rule = alert.item, alert.rule
    minutes = max(0, int((now - alert.opened_at).total_seconds() // 60))
    text = f"【已恢复】{item.region.name} {item.system} {item.name}：{rule.name}，持续约 {minutes} 分钟。{result.message}"
    ticket = alert.ticket
    if ticket is not None:
        actor = _actor(item)
        ticket.refresh_from_db()
        if actor is not None and ticket.is_open:
            try:
                desk.comment(
                    actor, ticket, f"监控告警已恢复：{result.message}（持续约 {minutes} 分钟）", internal=True
                )
                if flow.RESOLVED in flow.TRANSITIONS.get(ticket.status, ()):
                    desk.change_status(actor, ticket, flow.RESOLVED, "监控告警自动恢复")
            except (PermissionDenied, ValidationError) as exc:
                log.warning("monitor alert %s: ticket not updated (%s)", alert.pk, exc)
    _tell(item, alert.severity, text, ticket)


def _tell(item: Item, severity: str, text: str, ticket) -> None:
    from caiwei.desk.services import notify

    for user in responders(item)[:50]:
        notify(user, text[:300], ticket)
    for hook in Webhook.objects.filter(enabled=True).select_related("region"):
        if not item.region.path.startswith(hook.region.path):
            continue
        if SEVERITY_RANK.get(severity, 0) < SEVERITY_RANK.get(hook.min_severity, 0):
            continue
        error = send_webhook(hook, text)
        if error != hook.last_error:
            Webhook.objects.filter(pk=hook.pk).update(last_error=error[:300])


def send_webhook(hook: Webhook, text: str, timeout: float = 5.0) -> str:
    """POST the text to the group robot (企业微信 and 钉钉 take the same text message); '' or the error."""
    body = json.dumps({"msgtype": "text", "text": {"content": text}}, ensure_ascii=False).encode()
    try:
        url = hook.url()
        request = urllib.request.Request(  # noqa: S310 — http(s) checked on save
            url, body, {"Content-Type": "application/json; charset=utf-8"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 — http(s) checked on save
            reply = json.loads(answer.read() or b"{}")
    except Exception as exc:  # noqa: BLE001 — a robot that fails never stops the alert
        return f"发送失败：{exc}"[:300]
    code = reply.get("errcode", 0)
    return "" if code in (0, None) else f"机器人答 errcode={code}：{reply.get('errmsg', '')}"[:300]


# --- roll-ups and retention ---------------------------------------------------------------------------------------


def roll_up(now: datetime | None = None) -> dict:
    """Fold raw results older than the raw period (whole hours) into hourly rows, then drop them; drop roll-ups past
    their retention."""
    now = now or timezone.now()
    cutoff = (now - timedelta(hours=raw_hours())).replace(minute=0, second=0, microsecond=0)
    old = Result.objects.filter(at__lt=cutoff)
    groups = (
        old.annotate(hour=TruncHour("at", tzinfo=UTC))
        .values("item_id", "hour")
        .annotate(
            n=Count("id"),
            bad=Count("id", filter=Q(ok=False)),
            lo=Min("value"),
            mean=Avg("value"),
            hi=Max("value"),
        )
    )
    groups = list(groups)
    with transaction.atomic():
        existing = {}
        if groups:
            hours = [g["hour"] for g in groups]
            for row in Rollup.objects.filter(hour__gte=min(hours), hour__lte=max(hours)):
                existing[(row.item_id, row.hour)] = row
        fresh, merged = [], []
        for g in groups:
            row = existing.get((g["item_id"], g["hour"]))
            if row is None:
                fresh.append(
                    Rollup(
                        item_id=g["item_id"],
                        hour=g["hour"],
                        count=g["n"],
                        failures=g["bad"],
                        min_value=g["lo"],
                        avg_value=g["mean"],
                        max_value=g["hi"],
                    )
                )
                continue
            total = row.count + g["n"]  # a late result of an hour already folded
            if g["mean"] is not None:
                row.avg_value = (
                    g["mean"]
                    if row.avg_value is None
                    else (row.avg_value * row.count + g["mean"] * g["n"]) / total
                )
                row.min_value = g["lo"] if row.min_value is None else min(row.min_value, g["lo"])
                row.max_value = g["hi"] if row.max_value is None else max(row.max_value, g["hi"])
            row.count, row.failures = total, row.failures + g["bad"]
            merged.append(row)
        Rollup.objects.bulk_create(fresh, batch_size=2000)
        Rollup.objects.bulk_update(
            merged, ["count", "failures", "min_value", "avg_value", "max_value"], batch_size=2000
        )
        made = len(fresh) + len(merged)
        # one DELETE statement each (no rows fetched: millions a day)
        deleted = old._raw_delete(old.db)
        expired_qs = Rollup.objects.filter(hour__lt=now - timedelta(days=rollup_days()))
        expired = expired_qs._raw_delete(expired_qs.db)
    return {"rollups": made, "raw_deleted": deleted, "rollups_deleted": expired}


def history(item: Item, hours: int = 48) -> list[dict]:
    """Points for the item's chart: raw results within the raw period, hourly averages before."""
    now = timezone.now()
    since = now - timedelta(hours=hours)
    points = [
        {
            "at": r.hour.isoformat(),
            "value": r.avg_value,
            "min": r.min_value,
            "max": r.max_value,
            "ok": r.failures == 0,
        }
        for r in Rollup.objects.filter(item=item, hour__gte=since).order_by("hour")
    ]
    points += [
        {"at": r.at.isoformat(), "value": r.value, "ok": r.ok}
        for r in Result.objects.filter(item=item, at__gte=since).order_by("at")
    ]
    return points


# --- heartbeat, board, metrics ------------------------------------------------------------------------------------


def heartbeat(token: str) -> None:
    """A ping from a finance job: the item of that token (if any) is seen alive now. Nothing is said back."""
    if not token or len(token) > 200:
        return
    Item.objects.filter(kind="heartbeat", heartbeat_hash=hash_token(token)).update(
        last_ping_at=timezone.now()
    )


PROBLEM_STATES = (State.ALERT, State.DOWN, State.PAUSED)


def board(user, region_code: str = "", problems_limit: int = 300) -> dict:
    """The status board: per region and system the count of items in each state (one GROUP BY), and the items that
    are not fine listed by name (the fine ones are counted, not listed: a board of thousands stays readable)."""
    items = visible_items(user).filter(enabled=True)
    if region_code:
        items = items.filter(region__path__contains=f"{region_code}/")
    rows = items.values("region_id", "system", "state").annotate(n=Count("id"))
    regions = {r.pk: r for r in Region.objects.filter(pk__in={r["region_id"] for r in rows})}
    grouped: dict = {}
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        cell = grouped.setdefault(regions[row["region_id"]], {}).setdefault(
            row["system"], {"counts": defaultdict(int), "problems": [], "total": 0}
        )
        cell["counts"][row["state"]] += row["n"]
        cell["total"] += row["n"]
        counts[row["state"]] += row["n"]
    problems = items.filter(state__in=PROBLEM_STATES).order_by("-state", "name")[:problems_limit]
    for item in problems:
        grouped[item.region][item.system]["problems"].append(item)
    ordered = {
        region: dict(sorted(systems.items()))
        for region, systems in sorted(grouped.items(), key=lambda kv: kv[0].path)
    }
    for systems in ordered.values():
        for cell in systems.values():
            cell["counts"] = dict(cell["counts"])
    open_alerts = visible_alerts(user).filter(status=Alert.Status.OPEN).count()
    return {
        "grouped": ordered,
        "counts": dict(counts),
        "total": sum(counts.values()),
        "open_alerts": open_alerts,
    }


STATE_VALUE = {
    State.OK: 0,
    State.ALERT: 1,
    State.DOWN: 2,
    State.UNKNOWN: 3,
    State.PAUSED: 4,
    State.DISABLED: 5,
}


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def metrics_text(user) -> str:
    """Prometheus text format: each visible item's state, up, main value and every last metric."""
    lines = [
        "# HELP caiwei_monitor_state 监控项状态：0 正常，1 告警，2 不可用，3 未探测，4 维护中，5 已停用",
        "# TYPE caiwei_monitor_state gauge",
    ]
    values, metrics = [], []
    for item in visible_items(user).order_by("pk"):
        labels = (
            f'item="{item.pk}",name="{_label(item.name)}",kind="{item.kind}",'
            f'region="{item.region.code}",system="{_label(item.system)}"'
        )
        state = item.state if item.enabled else State.DISABLED
        lines.append(f"caiwei_monitor_state{{{labels}}} {STATE_VALUE.get(state, 3)}")
        if item.last_value is not None:
            values.append(f"caiwei_monitor_value{{{labels}}} {item.last_value:g}")
        for name, value in sorted((item.last_metrics or {}).items()):
            if isinstance(value, int | float):
                metrics.append(f'caiwei_monitor_metric{{{labels},metric="{_label(name)}"}} {value:g}')
    lines += [
        "# HELP caiwei_monitor_value 监控项最近一次的主要值",
        "# TYPE caiwei_monitor_value gauge",
        *values,
    ]
    lines += [
        "# HELP caiwei_monitor_metric 监控项最近一次的各项指标",
        "# TYPE caiwei_monitor_metric gauge",
        *metrics,
    ]
    return "\n".join(lines) + "\n"
