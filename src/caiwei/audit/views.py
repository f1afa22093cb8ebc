import csv
from typing import Any

from django.apps import apps
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.jobs import runner
from caiwei.jobs.models import Job

from .chain import SealFileError
from .export import EXPORT_COLUMNS, TIME_FORMAT, as_local, export_rows, search_events
from .log import record_export
from .models import AuditAction
from .seals import SealError, export_name, export_seals, latest, seal_quietly, seal_time

FILTER_NAMES = ("since", "until", "action", "actor", "ip", "object_type", "source", "q")

# Keys of ``detail`` (and of before/after outside a model's own fields) in words.
KEY_LABELS = {
    "action": "操作",
    "operation": "操作",
    "event": "事件",
    "reason": "原因",
    "ok": "是否成功",
    "message": "结果",
    "url": "连接",
    "until": "锁定至",
    "failures": "失败次数",
    "unknown_account": "账号不存在",
    "tokens_revoked": "作废的令牌数",
    "rows": "行数",
    "filters": "筛选条件",
    "capability": "所需权限",
    "field": "字段",
    "change": "变更",
    "ids": "涉及编号",
    "continued_after": "接续的行",
    "year": "年度",
    "warnings": "提示",
    "n": "数量",
    "ticket": "工单",
    "severity": "严重程度",
    "assignee": "处理人",
    "status": "状态",
    "since": "起始日期",
    "q": "关键字",
    "actor": "操作人",
    "ip": "来源地址",
    "object_type": "对象类型",
    "source": "途径",
    "run": "检查记录",
    "password": "密码",
    "secret": "密文",
    "last_login": "最近登录",
    "created_at": "创建时间",
    "at": "时间",
    "updated_at": "修改时间",
}
VALUE_WORDS = {"add": "添加", "remove": "移除", "clear": "清空"}
SHOWN_ITEMS = 20  # of a list value


def _model(object_type: str):
    try:
        return apps.get_model(object_type) if object_type.count(".") == 1 else None
    except (LookupError, ValueError):
        return None


def _label(key: str, model) -> str:
    if model is not None:
        from django.core.exceptions import FieldDoesNotExist

        try:
            return str(model._meta.get_field(key).verbose_name)
        except FieldDoesNotExist:  # a computed or detail key
            pass
        if key.endswith("_id"):
            return _label(key.removesuffix("_id"), model)
    return KEY_LABELS.get(key, key)


def _value(value: Any, model=None) -> str:
    """A stored value for reading: times in Beijing time, 是/否, lists and nested objects compact."""
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    moment = as_local(value)
    if moment is not None:
        return moment.strftime(TIME_FORMAT)
    if isinstance(value, dict):
        return "；".join(f"{_label(str(k), model)}：{_value(v, model)}" for k, v in value.items()) or "（空）"
    if isinstance(value, list):
        shown = "、".join(_value(v, model) for v in value[:SHOWN_ITEMS])
        return f"{shown}……（共 {len(value)} 项）" if len(value) > SHOWN_ITEMS else shown or "（空）"
    return VALUE_WORDS.get(str(value), str(value))


def entries(data: Any, model=None) -> list[tuple[str, str]]:
    """(label, value) pairs of a JSON object from the chain, for a key/value list on the page."""
    if data in (None, {}, ""):
        return []
    if not isinstance(data, dict):
        return [("内容", _value(data, model))]
    return [(_label(str(k), model), _choice(model, str(k), v) or _value(v, model)) for k, v in data.items()]


def _choice(model, key: str, value: Any) -> str:
    """A stored choice (“queued”, “engineer”) as its label (“排队中”, “二线工程师”) when the field says so."""
    if model is None or isinstance(value, (dict, list)) or value in (None, ""):
        return ""
    from django.core.exceptions import FieldDoesNotExist

    try:
        choices = dict(model._meta.get_field(key).flatchoices)
    except (FieldDoesNotExist, TypeError):
        return ""
    label = choices.get(value)
    return str(label) if label is not None else ""


def _present(event) -> dict:
    model = _model(event.object_type)
    return {
        "event": event,
        "type_label": str(model._meta.verbose_name) if model is not None else "",
        "before": entries(event.before, model),
        "after": entries(event.after, model),
        "detail": entries(event.detail),
    }


def _filters(request) -> dict:
    return {
        name: request.GET.get(name, "").strip() for name in FILTER_NAMES if request.GET.get(name, "").strip()
    }


@require(Capability.READ_AUDIT)
def events(request):
    filters = _filters(request)
    try:
        qs = search_events(filters)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        qs, filters = search_events({}), {}
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    last_verify = Job.objects.filter(kind="audit.verify").first()
    seal, seal_error = None, ""
    try:
        seal = latest()
    except (SealError, SealFileError) as exc:
        seal_error = str(exc)
    context = {
        "page": page,
        "rows": [_present(e) for e in page],
        "filters": filters,
        "actions": AuditAction.choices,
        "last_verify": last_verify,
        "latest_seal": seal,
        "latest_seal_at": seal_time(seal) if seal else None,
        "seal_error": seal_error,
    }
    return render(request, "audit/events.html", context)


class _Echo:
    def write(self, value):
        return value


@require(Capability.READ_AUDIT)
def export(request):
    filters = _filters(request)
    try:
        search_events(filters)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        return redirect("audit:events")
    count = search_events(filters).count()
    record_export("audit.auditevent", count, filters)
    seal_quietly()
    writer = csv.writer(_Echo())

    def rows():
        yield "\ufeff" + writer.writerow([label for _, label in EXPORT_COLUMNS])
        for row in export_rows(filters):
            yield writer.writerow(row)

    name = f"audit-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require(Capability.READ_AUDIT)
@require_POST
def verify(request):
    job = runner.start("audit.verify", user=request.user)
    messages.info(request, "已提交审计链校验任务")
    return redirect("jobs:detail", pk=job.pk)


@require(Capability.READ_AUDIT)
def seals(request):
    """导出封存点: the seal file, for the auditor to keep away from this server; the export is audited."""
    data, count = export_seals()
    record_export("audit.seal", count)
    response = HttpResponse(data, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_name()}"'
    return response
