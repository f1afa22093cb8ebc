"""工单队列: saved views, filters, urgency order and the SLA countdown of a page of tickets (page and API).

Saved views (bookmarkable as ``?view=``):

- 我的待办 ``mine``: open tickets assigned to me.
- 我组待办 ``group``: open tickets at my tier(s) in my regions, whoever holds them (unassigned, me or a colleague).
  There is no group model: a user's tiers follow from the roles (一线坐席 → 一线; 二线工程师 → 二线 and 厂商, whose
  vendor orders they follow; 项目经理 → every tier).
- 即将超时 ``due_soon``: open, past the policy's warn ratio on a running clock, not yet overdue.
- 已超时 ``overdue``: open, and a first-response or resolution clock breached (a late first response stays so).

即将超时/已超时 are database queries on two instants stored per ticket (``Ticket.sla_warn_at`` and
``sla_overdue_at``, from ``sla.queue_instants``), recomputed on every status change and reconciled by the SLA sweep.
Only the rows of the page shown get a countdown, in business time on the calendar of the clock's target.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from html import escape as esc

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.safestring import mark_safe

from caiwei.accounts.roles import Role
from caiwei.bizcalendar.engine import CalendarSpec, key_periods_at
from caiwei.regions.scoping import visible_regions

from . import flow, services, sla
from .models import SlaPolicy, Ticket
from .services import visible_tickets
from .sla import business_time

VIEWS = {
    "": "全部",
    "mine": "我的待办",
    "group": "我组待办",
    "due_soon": "即将超时",
    "overdue": "已超时",
}
VIEW_HELP = {
    "": "按授权区划的全部工单",
    "mine": "分派给我的未办结工单",
    "group": "我所在处理层级（一线坐席：一线；二线工程师：二线与厂商；项目经理：全部）在我授权区划内的未办结工单",
    "due_soon": "未办结、已用时间超过策略预警比例但尚未超时的工单",
    "overdue": "未办结、首次响应或解决已超时的工单",
}
ROLE_TIERS = {
    Role.AGENT: (Ticket.Tier.FIRST,),
    Role.ENGINEER: (Ticket.Tier.SECOND, Ticket.Tier.VENDOR),
    Role.PROJECT_MANAGER: tuple(Ticket.Tier.values),
}
UNASSIGNED = "none"
# The page counts at most this many rows (a COUNT over a million tickets costs more than the page).
COUNT_CAP = 1000


def user_tiers(user) -> list[str]:
    return sorted({tier for role, tiers in ROLE_TIERS.items() if user.has_role(role) for tier in tiers})


@dataclass
class Filters:
    """The queue's query string; the API takes the same names. ``status`` "open" is every unfinished status."""

    view: str = ""
    status: str = "open"
    assignee: str = ""
    tier: str = ""
    region: str = ""
    severity: str = ""
    ticket_type: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query, default_status: str = "open") -> Filters:
        values = {f.name: (query.get(f.name) or "").strip() for f in fields(cls)}
        values["status"] = values["status"] or default_status
        return cls(**values)

    def check(self) -> None:
        """Refuse a value no ticket can have, naming the field (a page shows it, the API answers 400)."""
        choices = {
            "view": VIEWS,
            "status": {"open": 1, "all": 1, **flow.STATUS_LABELS},
            "tier": Ticket.Tier.values,
            "severity": sla.SEVERITIES,
            "ticket_type": sla.TYPES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value and value not in allowed:
                raise ValidationError({name: f"“{value[:40]}”不是可选值"})
        for name, limit in (("region", 20), ("assignee", 150), ("q", 120)):
            if len(getattr(self, name)) > limit:
                raise ValidationError({name: f"最多 {limit} 个字符"})

    @property
    def open_only(self) -> bool:
        return bool(self.view) or self.status == "open" or self.status in flow.OPEN_STATUSES

    def query_string(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        return urlencode({k: v for k, v in values.items() if v and not (k == "status" and v == "open")})


@dataclass
class VisibleRegion:
    pk: int
    code: str
    name: str
    level: int
    path: str


def user_regions(user) -> list[VisibleRegion]:
    """The regions the user sees (``visible_regions``), read once per request for the filters and the form."""
    rows = visible_regions(user).order_by("path").values_list("pk", "code", "name", "level", "path")
    return [VisibleRegion(*row) for row in rows]


def region_scope(user, code: str, regions: list[VisibleRegion] | None = None) -> list[int]:
    """The region ``code`` and its subtree if the user may see it, else nothing: a filter never widens the scope
    (a region outside the grant gives an empty list, as the region filter always has; the page says why).

    A grant covers a whole subtree, so the subtree of a visible region is visible: it is taken from the same list.
    """
    regions = user_regions(user) if regions is None else regions
    region = next((r for r in regions if r.code == code), None)
    if region is None:
        return []
    return [r.pk for r in regions if r.path.startswith(region.path)]


def assignee_choices(regions: list[VisibleRegion]) -> list[tuple[str, str]]:
    """O&M staff granted one of ``regions`` (the user's), for the 处理人 filter: (username, shown name)."""
    from caiwei.accounts.models import User

    rows = (
        User.objects.filter(
            is_active=True,
            role_grants__role__in=[Role.AGENT, Role.ENGINEER, Role.PROJECT_MANAGER],
            regions__in=[r.pk for r in regions],
        )
        .distinct()
        .order_by("username")
        .values_list("username", "full_name")
    )
    return [(username, f"{full} ({username})" if full else username) for username, full in rows]


def overdue_q(now: datetime) -> Q:
    return Q(sla_overdue_at__lt=now)


def due_soon_q(now: datetime) -> Q:
    return Q(sla_warn_at__lte=now) & (Q(sla_overdue_at__isnull=True) | Q(sla_overdue_at__gte=now))


# What a queue row (page or API) shows: the rest of a ticket (its description above all) is not read.
ROW_FIELDS = (
    *("number", "title", "system", "ticket_type", "severity", "status", "tier", "policy", "opened_at"),
    *("responded_at", "resolved_at", "closed_at", "due_first_response", "due_resolution", "sla_warn_at"),
    *("sla_overdue_at", "region__code", "region__name", "assignee__username", "assignee__full_name"),
)


def tickets(user, filters: Filters, now: datetime | None = None, regions: list[VisibleRegion] | None = None):
    """The user's tickets (region scoping of ``visible_tickets``) narrowed by ``filters``; never wider.

    ``regions``: the user's visible regions when the caller has read them already.
    """
    filters.check()
    now = now or timezone.now()
    # The policy comes with the countdown's engines (Clocks.load), not joined to every row.
    qs = visible_tickets(user).select_related(None).select_related("region", "assignee")
    if filters.region:
        qs = qs.filter(region_id__in=region_scope(user, filters.region, regions))
    if filters.open_only:
        qs = qs.filter(status__in=sorted(flow.OPEN_STATUSES))
    if filters.status not in ("open", "all"):
        qs = qs.filter(status=filters.status)
    if filters.view == "mine":
        qs = qs.filter(assignee=user)
    elif filters.view == "group":
        qs = qs.filter(tier__in=user_tiers(user))
    elif filters.view == "due_soon":
        qs = qs.filter(due_soon_q(now))
    elif filters.view == "overdue":
        qs = qs.filter(overdue_q(now))
    if filters.assignee == UNASSIGNED:
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee:
        qs = qs.filter(assignee__username=filters.assignee)
    for name in ("tier", "severity", "ticket_type"):
        if getattr(filters, name):
            qs = qs.filter(**{name: getattr(filters, name)})
    if filters.q:
        qs = qs.filter(
            Q(number=filters.q) | Q(title__icontains=filters.q) | Q(requester_org__icontains=filters.q)
        )
    if filters.open_only:
        # Most urgent first: overdue longest, then the nearest breach; stopped clocks (等待用户) last.
        return qs.only(*ROW_FIELDS).order_by(F("sla_overdue_at").asc(nulls_last=True), "-opened_at", "-pk")
    return qs.only(*ROW_FIELDS).order_by("-opened_at", "-pk")


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP rows (``capped`` tells the page to say "以上")."""

    @cached_property
    def count(self) -> int:
        n = self.object_list.order_by().values("pk")[: COUNT_CAP + 1].count()
        self.capped = n > COUNT_CAP
        return min(n, COUNT_CAP)


# --- countdown --------------------------------------------------------------------------------------------------

# Building the calendars (statutory days of a century, notices, added days) costs more than a whole queue page;
# pages reuse them for CALENDAR_TTL seconds, and any save in the calendar app clears them (in this process at
# once; other processes within the TTL). The SLA sweep and every status change read them fresh.
CALENDAR_TTL = 30.0
_calendar_lock = threading.Lock()
_calendar_cache: list = [None, 0.0]


def calendars() -> dict:
    with _calendar_lock:
        specs, at = _calendar_cache
        if specs is None or time.monotonic() - at > CALENDAR_TTL:
            specs = services.calendars()
            _calendar_cache[:] = [specs, time.monotonic()]
        return specs


def forget_calendars(**_kwargs) -> None:
    _calendar_cache[:] = [None, 0.0]


def _watch_calendars() -> None:
    from django.apps import apps
    from django.db.models.signals import post_delete, post_save

    for model in apps.get_app_config("bizcalendar").get_models():
        post_save.connect(
            forget_calendars, sender=model, dispatch_uid=f"queue-calendars-save-{model.__name__}"
        )
        post_delete.connect(
            forget_calendars, sender=model, dispatch_uid=f"queue-calendars-del-{model.__name__}"
        )


_watch_calendars()


def duration_text(amount: timedelta) -> str:
    minutes = int(amount.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}小时{minutes}分" if hours else f"{minutes}分"


@dataclass
class Countdown:
    """What a queue row shows of the SLA: a state with its label (never colour alone) and the leading clock."""

    state: str  # overdue / due_soon / paused / ok / done
    label: str
    clock: str = ""  # 响应 / 解决
    text: str = ""  # 剩余 3小时20分 / 超时 1小时5分
    due: datetime | None = None
    remaining_minutes: int | None = None  # business minutes, negative when overdue
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "label": self.label,
            "clock": self.clock,
            "text": self.text,
            "due": self.due,
            "remaining_minutes": self.remaining_minutes,
        }


STATE_LABELS = {
    "overdue": "已超时",
    "due_soon": "即将超时",
    "paused": "已暂停",
    "ok": "正常",
    "done": "",
}


class Clocks:
    """Countdowns for one page of tickets: the policies' engines and calendars are loaded once for all rows."""

    def __init__(self, specs: dict, now: datetime | None = None):
        self.specs = specs
        self.now = now or timezone.now()
        self.engines: dict[int, sla.Policy] = {}
        self.targets: dict[tuple, dict] = {}

    def load(self, rows) -> Clocks:
        wanted = {t.policy_id for t in rows} - set(self.engines)
        if wanted:
            for policy in SlaPolicy.objects.filter(pk__in=wanted).prefetch_related("rules"):
                self.engines[policy.pk] = policy.engine()
        return self

    def _spec(self, ticket: Ticket, clock: str) -> CalendarSpec:
        periods = tuple(p.code for p in key_periods_at(self.specs["workday"], ticket.opened_at))
        key = (ticket.policy_id, ticket.severity, ticket.ticket_type, periods)
        if key not in self.targets:
            engine = self.engines.get(ticket.policy_id) or ticket.policy.engine()
            try:
                self.targets[key] = engine.targets(ticket.severity, ticket.ticket_type, periods)
            except ValueError:
                self.targets[key] = {}
        target = self.targets[key].get(clock)
        return self.specs.get(target.calendar if target else "workday", self.specs["workday"])

    def of(self, ticket: Ticket) -> Countdown:
        now = self.now
        if ticket.status not in flow.OPEN_STATUSES:
            return Countdown("done", flow.STATUS_LABELS.get(ticket.status, ticket.status))
        if ticket.sla_overdue_at is not None and ticket.sla_overdue_at < now:
            state = "overdue"
        elif ticket.sla_warn_at is not None and ticket.sla_warn_at <= now:
            state = "due_soon"
        elif ticket.status == flow.WAITING:
            state = "paused"
        else:
            state = "ok"
        result = Countdown(state, STATE_LABELS[state])
        if ticket.responded_at is None and ticket.due_first_response is not None:
            clock, name, due = "first_response", "响应", ticket.due_first_response
        elif ticket.resolved_at is None and ticket.due_resolution is not None:
            clock, name, due = "resolution", "解决", ticket.due_resolution
            late = ticket.due_first_response and ticket.responded_at > ticket.due_first_response
            if state == "overdue" and late:
                result.note = "首次响应已超时"
        else:
            if ticket.status == flow.WAITING:
                result.text = "等待用户，计时暂停"
            return result
        spec = self._spec(ticket, clock)
        result.clock, result.due = name, due
        if now < due:
            left = business_time(spec, now, due)
            result.text, result.remaining_minutes = (
                f"剩余 {duration_text(left)}",
                int(left.total_seconds() // 60),
            )
        else:
            over = business_time(spec, due, now)
            if over:
                result.text = f"超时 {duration_text(over)}"
                result.remaining_minutes = -int(over.total_seconds() // 60)
            else:  # due at a period's end; late only once business time runs again
                result.text, result.remaining_minutes = "剩余 0分", 0
        return result


# --- rows -------------------------------------------------------------------------------------------------------
# A page of 50 rows × 11 cells through the template engine cost more than everything else of the request together
# (bench/desk.py); the rows are built here (every value escaped) and the template places them.

SEVERITY_BADGES = {
    "重大": mark_safe('<span class="badge text-bg-danger">重大</span>'),  # noqa: S308 (constant markup)
    "紧急": mark_safe('<span class="badge text-bg-warning">紧急</span>'),  # noqa: S308
}
STATE_BADGES = {
    "overdue": mark_safe('<span class="badge text-bg-danger">已超时</span>'),  # noqa: S308
    "due_soon": mark_safe('<span class="badge text-bg-warning">即将超时</span>'),  # noqa: S308
    "paused": mark_safe('<span class="badge text-bg-secondary">已暂停</span>'),  # noqa: S308
    "ok": mark_safe('<span class="badge text-bg-light border">正常</span>'),  # noqa: S308
}
ROW_CLASS = {"overdue": ' class="cw-sla-overdue"', "due_soon": ' class="cw-sla-near"'}
TIER_LABELS = dict(Ticket.Tier.choices)
UNASSIGNED_HTML = '<span class="text-muted">未分派</span>'


def rows_html(rows: list[tuple[Ticket, Countdown]]) -> str:
    """The table rows of a queue page; every stored or computed value goes through ``escape``."""
    base = reverse("desk:detail", args=["GD0"])[: -len("GD0/")]
    out = []
    for t, c in rows:
        number = esc(t.number)
        title = esc(t.title)
        if t.assignee is not None:
            person = esc(t.assignee.full_name or t.assignee.username)
            person_full = esc(str(t.assignee))
        else:
            person, person_full = UNASSIGNED_HTML, ""
        sla_title = ""
        if c.due:
            note = f"；{c.note}" if c.note else ""
            due = timezone.localtime(c.due).strftime("%Y-%m-%d %H:%M")
            sla_title = f' title="{esc(c.clock)}时限 {due}{esc(note)}"'
        countdown = ""
        if c.text:
            countdown = f" <span data-countdown>{esc(c.clock + ' ' if c.clock else '')}{esc(c.text)}</span>"
        badge = STATE_BADGES.get(c.state) or f'<span class="text-muted">{esc(c.label)}</span>'
        severity = SEVERITY_BADGES.get(t.severity) or esc(t.severity)
        opened = timezone.localtime(t.opened_at).strftime("%m-%d %H:%M")
        out.append(
            f'<tr data-ticket="{number}" data-sla="{esc(c.state)}"{ROW_CLASS.get(c.state, "")}>'
            f'<td><a href="{base}{number}/">{number}</a></td>'
            f'<td class="cw-q-title" title="{title}">{title}</td><td>{esc(t.region.name)}</td>'
            f"<td>{esc(t.system)}</td><td>{esc(t.ticket_type)}</td><td>{severity}</td>"
            f"<td>{esc(flow.STATUS_LABELS.get(t.status, t.status))}</td><td>{esc(TIER_LABELS.get(t.tier, t.tier))}</td>"
            f'<td class="cw-q-person" title="{person_full}">{person}</td><td>{opened}</td>'
            f'<td class="cw-q-sla"{sla_title}>{badge}{countdown}</td></tr>'
        )
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)
