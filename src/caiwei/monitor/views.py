"""监控 pages: the status board (and its wall mode), open alerts, the inventory with each item's history, alert rules,
maintenance windows, group robots, and the public heartbeat route."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.regions.scoping import visible_regions

from . import probes, services
from .forms import ItemForm, RuleForm, WebhookForm, WindowForm
from .models import CATEGORIES, Alert, State

HELP = [
    ("http", '{"url": "https://127.0.0.1/健康检查", "expect_status": "200", "expect_text": "正常"}'),
    ("tcp", '{"host": "10.0.0.5", "port": 1521}'),
    ("tls", '{"host": "pay.example.gov.cn", "port": 443}'),
    ("database", '{"query": "SELECT 1"}（连接取自所选的登记数据库）'),
    (
        "rabbitmq",
        '{"api": "http://10.0.0.7:15672", "vhost": "/", "queue": "bank.B102.voucher", "username": "monitor"}',
    ),
    ("redis", '{"host": "10.0.0.8", "port": 6379}'),
    (
        "sftp",
        '{"host": "10.0.0.9", "username": "caiwei", "directory": "/out", "pattern": "*.txt", "host_key": "SHA256:…"}',
    ),
    ("ftp", '{"host": "10.0.0.9", "username": "caiwei", "directory": "/out", "pattern": "*.txt"}'),
    ("host", '{"url": "http://10.0.0.5:9100/metrics", "mount": "/"}'),
    ("host_ssh", '{"host": "10.0.0.5", "username": "monitor", "mount": "/"}'),
    ("promql", '{"api": "http://10.0.0.3:9090", "query": "up"}'),
    (
        "freshness",
        '{"source": "journal", "path": "/srv/mq/journal", "bank": "B102", "mode": "window", "window_minutes": 60}；'
        '每日文件：{"source": "sftp", …, "mode": "daily", "deadline": "10:00"}',
    ),
    ("sequence", '{"path": "/srv/mq/journal", "bank": "B102", "direction": "voucher"}'),
    ("heartbeat", '{"period_s": 3600, "grace_s": 600}'),
]


def _can_manage(user) -> bool:
    return user.can(Capability.MONITOR_MANAGE)


@require(Capability.MONITOR_VIEW)
def board(request):
    region = request.GET.get("region", "")[:20]
    context = services.board(request.user, region)
    context.update(
        regions=visible_regions(request.user).order_by("path"),
        region=region,
        states=State,
        can_manage=_can_manage(request.user),
        wall=False,
    )
    if request.headers.get("HX-Request"):
        return render(request, "monitor/_board.html", context)
    return render(request, "monitor/board.html", context)


@require(Capability.MONITOR_VIEW)
def wall(request):
    region = request.GET.get("region", "")[:20]
    context = services.board(request.user, region)
    context.update(region=region, wall=True, states=State)
    if request.headers.get("HX-Request"):
        return render(request, "monitor/_board.html", context)
    return render(request, "monitor/wall.html", context)


@require(Capability.MONITOR_VIEW)
def alert_list(request):
    show = request.GET.get("show", "open")
    alerts = services.visible_alerts(request.user)
    if show != "all":
        alerts = alerts.filter(status=Alert.Status.OPEN)
    return render(request, "monitor/alerts.html", {"alerts": alerts[:300], "show": show})


@require(Capability.MONITOR_VIEW)
def item_list(request):
    items = list(services.visible_items(request.user).order_by("region__path", "system", "name"))
    sections = [(label, [i for i in items if i.category == code]) for code, (label, _) in CATEGORIES.items()]
    return render(
        request,
        "monitor/items.html",
        {
            "sections": [s for s in sections if s[1]],
            "can_manage": _can_manage(request.user),
            "count": len(items),
        },
    )


@require(Capability.MONITOR_VIEW)
def item_detail(request, pk):
    item = get_object_or_404(services.visible_items(request.user), pk=pk)
    try:
        hours = max(1, min(int(request.GET.get("hours", 48)), 24 * 90))
    except ValueError:
        hours = 48
    points = services.history(item, hours)
    results = item.results.order_by("-at")[:50]
    return render(
        request,
        "monitor/item.html",
        {
            "item": item,
            "points": points,
            "hours": hours,
            "results": results,
            "alerts": item.alerts.select_related("rule", "ticket")[:20],
            "metric_label": probes.METRIC_LABELS.get(probes.PRIMARY.get(item.kind, ""), "值"),
            "metrics": [
                (probes.METRIC_LABELS.get(k, k), v) for k, v in sorted((item.last_metrics or {}).items())
            ],
            "can_manage": _can_manage(request.user),
            "heartbeat_url": request.build_absolute_uri("/monitor/hb/") if item.kind == "heartbeat" else "",
            "config_json": json.dumps(item.config or {}, ensure_ascii=False, indent=2),
        },
    )


@require(Capability.MONITOR_MANAGE)
def item_new(request):
    return _item_form(request, None)


@require(Capability.MONITOR_MANAGE)
def item_edit(request, pk):
    return _item_form(request, get_object_or_404(services.visible_items(request.user), pk=pk))


def _item_form(request, item):
    form = ItemForm(request.POST or None, instance=item, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            saved, token = services.save_item(
                request.user,
                form.instance,
                secret=form.cleaned_data.get("secret") or "",
                clear_secret=bool(form.cleaned_data.get("clear_secret")),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"已保存监控项“{saved.name}”")
            if token:
                messages.warning(
                    request,
                    f"心跳地址（只显示这一次，请配置到后台任务中）：{request.build_absolute_uri('/monitor/hb/' + token)}",
                )
            return redirect("monitor:item", saved.pk)
    return render(
        request,
        "monitor/item_form.html",
        {"form": form, "item": item, "help": [(probes.KINDS[k], t) for k, t in HELP]},
    )


@require(Capability.MONITOR_MANAGE)
@require_POST
def item_run(request, pk):
    item = get_object_or_404(services.visible_items(request.user), pk=pk)
    result = services.run_item_now(item)
    (messages.success if result.ok else messages.error)(request, f"已探测“{item.name}”：{result.message}")
    return redirect("monitor:item", item.pk)


@require(Capability.MONITOR_MANAGE)
@require_POST
def item_token(request, pk):
    item = get_object_or_404(services.visible_items(request.user), pk=pk)
    if item.kind != "heartbeat":
        messages.error(request, "只有后台任务心跳类型有心跳地址")
        return redirect("monitor:item", item.pk)
    token = services.new_heartbeat_token(request.user, item)
    messages.warning(
        request,
        f"新的心跳地址（只显示这一次，旧地址已作废）：{request.build_absolute_uri('/monitor/hb/' + token)}",
    )
    return redirect("monitor:item", item.pk)


@require(Capability.MONITOR_MANAGE)
@require_POST
def item_delete(request, pk):
    item = get_object_or_404(services.visible_items(request.user), pk=pk)
    if request.POST.get("confirm") != item.name:
        messages.error(request, "删除须在“确认名称”中输入监控项名称")
        return redirect("monitor:item", item.pk)
    services.delete_item(request.user, item)
    messages.success(request, f"已删除监控项“{item.name}”及其历史")
    return redirect("monitor:items")


@require(Capability.MONITOR_VIEW)
def rule_list(request):
    return render(
        request,
        "monitor/rules.html",
        {"rules": services.visible_rules(request.user), "can_manage": _can_manage(request.user)},
    )


@require(Capability.MONITOR_MANAGE)
def rule_new(request):
    return _rule_form(request, None)


@require(Capability.MONITOR_MANAGE)
def rule_edit(request, pk):
    return _rule_form(request, get_object_or_404(services.visible_rules(request.user), pk=pk))


def _rule_form(request, rule):
    form = RuleForm(request.POST or None, instance=rule, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_rule(request.user, form.instance)
        except ValidationError as exc:
            form.add_error(None, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"已保存告警规则“{saved.name}”")
            return redirect("monitor:rules")
    return render(
        request,
        "monitor/form.html",
        {"form": form, "title": rule.name if rule else "新增告警规则", "back": "monitor:rules"},
    )


@require(Capability.MONITOR_VIEW)
def window_list(request):
    return render(
        request,
        "monitor/windows.html",
        {
            "windows": services.visible_windows(request.user).prefetch_related("items"),
            "can_manage": _can_manage(request.user),
        },
    )


@require(Capability.MONITOR_MANAGE)
def window_new(request):
    return _window_form(request, None)


@require(Capability.MONITOR_MANAGE)
def window_edit(request, pk):
    return _window_form(request, get_object_or_404(services.visible_windows(request.user), pk=pk))


def _window_form(request, window):
    form = WindowForm(request.POST or None, instance=window, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_window(request.user, form.instance, form.cleaned_data.get("items") or [])
        except ValidationError as exc:
            form.add_error(None, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"已保存维护窗口“{saved.reason}”")
            return redirect("monitor:windows")
    return render(
        request,
        "monitor/form.html",
        {
            "form": form,
            "title": window.reason if window else "新增维护窗口",
            "back": "monitor:windows",
            "window": window,
        },
    )


@require(Capability.MONITOR_MANAGE)
@require_POST
def window_delete(request, pk):
    window = get_object_or_404(services.visible_windows(request.user), pk=pk)
    if request.POST.get("confirm") != "1":
        messages.error(request, "请确认删除")
        return redirect("monitor:windows")
    services.delete_window(request.user, window)
    messages.success(request, f"已删除维护窗口“{window.reason}”")
    return redirect("monitor:windows")


@require(Capability.MONITOR_MANAGE)
def webhook_list(request):
    return render(request, "monitor/webhooks.html", {"hooks": services.visible_webhooks(request.user)})


@require(Capability.MONITOR_MANAGE)
def webhook_new(request):
    return _webhook_form(request, None)


@require(Capability.MONITOR_MANAGE)
def webhook_edit(request, pk):
    return _webhook_form(request, get_object_or_404(services.visible_webhooks(request.user), pk=pk))


def _webhook_form(request, hook):
    form = WebhookForm(request.POST or None, instance=hook, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_webhook(request.user, form.instance, form.cleaned_data.get("url") or "")
        except ValidationError as exc:
            form.add_error(None, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"已保存群机器人“{saved.name}”")
            return redirect("monitor:webhooks")
    return render(
        request,
        "monitor/form.html",
        {"form": form, "title": hook.name if hook else "新增群机器人", "back": "monitor:webhooks"},
    )


@csrf_exempt
def heartbeat(request, token):
    """GET or POST from a finance job. Always the same answer, whether the token exists or not."""
    if request.method not in ("GET", "POST", "HEAD"):
        return HttpResponse("仅支持 GET 或 POST\n", status=405, content_type="text/plain; charset=utf-8")
    services.heartbeat(token)
    return HttpResponse("OK\n", content_type="text/plain; charset=utf-8")
