"""One search used by the page, the API and the CLI export."""

import ipaddress
import json
import re
from datetime import date, datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from caiwei.inputs import text_problem
from caiwei.web.exports import safe_cell

from .models import AuditEvent

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # every time on the audit page and in the export, in Beijing time
ZONE_NAME = "北京时间"
EXPORT_COLUMNS = [
    ("seq", "序号"),
    ("at", f"时间（{ZONE_NAME}，UTC+8）"),
    ("action", "动作"),
    ("actor", "操作人"),
    ("ip", "来源地址"),
    ("source", "途径"),
    ("request_id", "请求 ID"),
    ("object_type", "对象类型"),
    ("object_id", "对象 ID"),
    ("object_repr", "对象"),
    ("before", "修改前"),
    ("after", "修改后"),
    ("detail", "说明"),
    ("hash", "哈希"),
]


ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def as_local(value: Any) -> datetime | None:
    """A stored time (a datetime, or an ISO string such as ``2026-05-01T02:00:00Z`` / ``…+00:00``) in Beijing time
    (settings.TIME_ZONE); None for anything else. A time without a zone is taken as already local."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and ISO_TIME.fullmatch(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if timezone.is_naive(moment):
        return moment
    return timezone.localtime(moment)


def localize(value: Any) -> Any:
    """``value`` (a JSON value from the chain) with every time in it written in Beijing time, ``+08:00``."""
    if isinstance(value, dict):
        return {k: localize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [localize(v) for v in value]
    moment = as_local(value)
    return moment.isoformat(timespec="seconds") if moment is not None else value


def _day(value: Any, field: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationError(f"{field}：日期格式应为 YYYY-MM-DD，收到“{value}”") from exc
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


TEXT_FILTERS = {
    "action": "动作",
    "actor": "操作人",
    "ip": "来源地址",
    "object_type": "对象类型",
    "source": "途径",
    "q": "关键字",
}


def _check_filters(filters: dict[str, Any]) -> None:
    """Refuse filter text no row can hold (a NUL would reach PostgreSQL as a 500) and an ip that is no address."""
    errors = []
    for name, label in TEXT_FILTERS.items():
        value = filters.get(name)
        if not value:
            continue
        problem = text_problem(str(value))
        if problem is None and len(str(value)) > 200:
            problem = "最多 200 个字符"
        if problem is None and name == "ip":
            try:
                ipaddress.ip_address(str(value))
            except ValueError:
                problem = f"“{value}”不是有效的 IP 地址"
        if problem:
            errors.append(f"{label}（{name}）：{problem}")
    if errors:
        raise ValidationError(errors)


def search_events(filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    _check_filters(filters)
    qs = AuditEvent.objects.all()
    since, until = _day(filters.get("since"), "起始日期"), _day(filters.get("until"), "截止日期", end=True)
    if since:
        qs = qs.filter(at__gte=since)
    if until:
        qs = qs.filter(at__lte=until)
    for name in ("action", "source", "object_type"):
        if filters.get(name):
            qs = qs.filter(**{name: filters[name]})
    if filters.get("actor"):
        qs = qs.filter(actor__icontains=filters["actor"])
    if filters.get("ip"):
        qs = qs.filter(ip=filters["ip"])
    if filters.get("q"):
        q = filters["q"]
        qs = qs.filter(Q(object_repr__icontains=q) | Q(object_id=q) | Q(request_id=q))
    return qs.order_by("-seq")


def export_rows(filters: dict[str, Any]):
    """Rows of the CSV export; every cell passes ``safe_cell`` so no user text is read as a formula."""
    for event in search_events(filters).iterator(chunk_size=2000):
        values = []
        for name, _ in EXPORT_COLUMNS:
            value = getattr(event, name)
            if name == "at":
                value = timezone.localtime(value).strftime(TIME_FORMAT)
            elif name == "action":
                value = event.get_action_display()
            elif name in ("before", "after", "detail"):
                value = "" if value in (None, {}) else json.dumps(localize(value), ensure_ascii=False)
            values.append(safe_cell(value))
        yield values
