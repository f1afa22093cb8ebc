"""巡检 services: region-scoped lists, plan changes (audited), the tick that creates exactly one run per due slot,
the worker's automated items (monitor probes, data checks, reconciliation), engineers' manual results with
screenshots, finishing a run, tickets from abnormal items, the inspection calendar and the KPI tally."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.regions.scoping import visible_regions

from . import slots
from .models import AUTOMATED, Plan, PlanItem, Run, RunItem, Screenshot

log = logging.getLogger(__name__)
# How far back a late tick still creates the runs of missed slots (a worker down over a long weekend).
LOOKBACK_DAYS = 10
MAX_NOTES = 4000


# --- what a user may reach ---------------------------------------------------------------------------------------


def visible_plans(user):
    return Plan.objects.visible_to(user).select_related("region")


def visible_runs(user):
    return Run.objects.visible_to(user).select_related("plan", "plan__region")


def visible_run_items(user):
    return RunItem.objects.filter(run__in=Run.objects.visible_to(user)).select_related("run", "run__plan")


def _own_region(user, region) -> None:
    if region is None or not visible_regions(user).filter(pk=region.pk).exists():
        raise PermissionDenied(f"无权在区划“{getattr(region, 'name', '')}”维护巡检计划")


def spec_of(plan: Plan):
    from caiwei.monitor.probes import ProbeError
    from caiwei.monitor.services import calendar_spec

    try:
        return calendar_spec(plan.calendar)
    except ProbeError as exc:
        raise ValidationError({"calendar": str(exc)}) from exc


# --- plans ---------------------------------------------------------------------------------------------------------


def check_plan(plan: Plan) -> None:
    errors = {}
    if not plan.name.strip():
        errors["name"] = "计划名称不能为空"
    if plan.valid_until and plan.valid_from and plan.valid_until < plan.valid_from:
        errors["valid_until"] = "失效日期不能早于生效日期"
    if plan.grace_minutes > 7 * 24 * 60:
        errors["grace_minutes"] = "宽限不能超过 7 天（10080 分钟）"
    if errors:
        raise ValidationError(errors)
    spec_of(plan)


def save_plan(user, plan: Plan) -> Plan:
    ensure(user, Capability.INSPECT_PLAN, "inspect.plan")
    _own_region(user, plan.region)
    if plan.pk:
        stored = Plan.objects.filter(pk=plan.pk).first()
        if stored and not visible_regions(user).filter(pk=stored.region_id).exists():
            raise PermissionDenied("无权修改该巡检计划")
    check_plan(plan)
    plan.save()
    return plan


def check_item(item: PlanItem, monitor_ids: list[int] | None = None) -> None:
    errors = {}
    if not item.name.strip():
        errors["name"] = "巡检项名称不能为空"
    try:
        item.rule()
    except ValueError as exc:
        text = str(exc)
        field = "nth" if "nth" in text else "times"
        errors[field] = (
            text if any("\u4e00" <= c <= "\u9fff" for c in text) else "频次设置有误（第几个工作日为 1–23）"
        )
    if item.kind == "probe" and monitor_ids is not None and not monitor_ids:
        errors["monitor_items"] = "监控探测类巡检项至少选一个监控项"
    if item.kind in ("check", "recon") and item.database_id is None:
        errors["database"] = "数据检查与银行对账类巡检项须选目标数据库"
    if errors:
        raise ValidationError(errors)


def save_item(user, item: PlanItem, monitor_ids: list[int] | None = None) -> PlanItem:
    """Add or change an item of a plan the user keeps; the monitor items and database must be the plan's region's."""
    from caiwei.checks.services import visible_databases
    from caiwei.monitor.services import visible_items

    ensure(user, Capability.INSPECT_PLAN, "inspect.plan")
    if not visible_plans(user).filter(pk=item.plan_id).exists():
        raise PermissionDenied("无权修改该巡检计划")
    check_item(item, monitor_ids)
    if item.database_id and not visible_databases(user).filter(pk=item.database_id).exists():
        raise ValidationError({"database": "目标数据库不存在或无权访问"})
    chosen = []
    if monitor_ids:
        chosen = list(visible_items(user).filter(pk__in=monitor_ids))
        if len(chosen) != len(set(monitor_ids)):
            raise ValidationError({"monitor_items": "所选监控项不存在或无权访问"})
    with transaction.atomic():
        item.save()
        if monitor_ids is not None:
            item.monitor_items.set(chosen)
    return item


def delete_item(user, item: PlanItem) -> None:
    ensure(user, Capability.INSPECT_PLAN, "inspect.plan")
    if not visible_plans(user).filter(pk=item.plan_id).exists():
        raise PermissionDenied("无权修改该巡检计划")
    item.delete()


# --- due slots and the tick ----------------------------------------------------------------------------------------


def plan_slots(plan: Plan, first: date, last: date, spec=None) -> dict[datetime, list[PlanItem]]:
    """slot → the plan's items due then, over the days ``first``..``last`` within the plan's validity (and not
    before the day it was created)."""
    spec = spec or spec_of(plan)
    # nothing is due before the plan existed (a new plan does not start with a backlog of missed inspections)
    first = max(first, plan.valid_from, timezone.localtime(plan.created_at).date())
    if plan.valid_until:
        last = min(last, plan.valid_until)
    due: dict[datetime, list[PlanItem]] = defaultdict(list)
    if not plan.enabled or last < first:
        return due
    for item in plan.items.all():
        try:
            rule = item.rule()
        except ValueError:
            continue
        for slot in slots.due_slots(spec, rule, first, last):
            due[slot].append(item)
    return dict(sorted(due.items()))


def create_run(plan: Plan, slot: datetime, items: list[PlanItem]) -> tuple[Run, bool]:
    """The run of ``plan`` at ``slot``: created once (a unique constraint), found after."""
    try:
        with transaction.atomic():
            run = Run.objects.create(
                plan=plan, slot=slot, deadline=slot + timedelta(minutes=plan.grace_minutes)
            )
            RunItem.objects.bulk_create(
                RunItem(run=run, plan_item=i, name=i.name, kind=i.kind, position=n)
                for n, i in enumerate(items)
            )
            record(
                AuditAction.CREATE,
                obj=run,
                detail={"plan": plan.pk, "slot": slot.isoformat(), "items": [i.name for i in items]},
            )
    except IntegrityError:
        return Run.objects.get(plan=plan, slot=slot), False
    return run, True


def tick(now: datetime | None = None, plans=None, start_jobs: bool = True) -> list[Run]:
    """Create the runs whose slot has come (in the last LOOKBACK_DAYS days) of ``plans`` (all plans by default)
    and start their automated items."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    plans = (plans if plans is not None else Plan.objects.all()).filter(enabled=True)
    plans = plans.prefetch_related("items").select_related("region")
    created = []
    for p in plans:
        try:
            due = plan_slots(p, today - timedelta(days=LOOKBACK_DAYS), today)
        except ValidationError:
            log.warning("plan %s: calendar %s missing", p.pk, p.calendar)
            continue
        made = set(Run.objects.filter(plan=p, slot__in=list(due)).values_list("slot", flat=True))
        for slot, items in due.items():
            if slot > now or slot in made:
                continue
            run, new = create_run(p, slot, items)
            if new:
                created.append(run)
    for run in created:
        if start_jobs and run.items.filter(kind__in=AUTOMATED).exists():
            start_automated(run)
    return created


def start_automated(run: Run, user=None):
    from caiwei.jobs import runner

    return runner.start(
        "inspections.run",
        user=user,
        title=f"巡检：{run}",
        params={"run": run.pk},
        region=run.plan.region,
    )


# --- automated items -----------------------------------------------------------------------------------------------


def _probe(item: RunItem) -> None:
    from caiwei.monitor.services import run_item_now

    results = []
    watched = list(item.plan_item.monitor_items.all()) if item.plan_item else []
    for watched_item in watched:
        try:
            r = run_item_now(watched_item)
            results.append(
                {
                    "item": watched_item.pk,
                    "name": watched_item.name,
                    "ok": bool(r.ok),
                    "latency_ms": r.latency_ms,
                    "message": r.message[:300],
                    "metrics": {k: v for k, v in (r.metrics or {}).items() if isinstance(v, int | float)},
                }
            )
        except Exception as exc:  # a probe that cannot even be built is an abnormal result, not a crash
            results.append(
                {"item": watched_item.pk, "name": watched_item.name, "ok": False, "message": str(exc)}
            )
    bad = [r for r in results if not r["ok"]]
    item.evidence = {"probes": results}
    item.result = RunItem.Result.ABNORMAL if bad or not results else RunItem.Result.OK
    item.notes = (
        "无监控项"
        if not results
        else f"探测 {len(results)} 项，异常 {len(bad)} 项"
        + ("：" + "；".join(f"{r['name']}（{r['message']}）" for r in bad) if bad else "")
    )


def _check(item: RunItem) -> None:
    from caiwei.checks.services import start_run

    database = item.plan_item.database
    run = start_run(None, database, packs=item.plan_item.packs or "all", inline=True)
    item.evidence = {
        "check_run": run.pk,
        "status": run.status,
        "rules_total": run.rules_total,
        "rules_failing": run.rules_failing,
        "rules_error": run.rules_error,
        "findings": run.findings,
    }
    good = run.status == "done" and not run.rules_failing and not run.rules_error
    item.result = RunItem.Result.OK if good else RunItem.Result.ABNORMAL
    item.notes = f"规则 {run.rules_total} 条，发现问题 {run.rules_failing} 条规则、{run.findings} 条记录" + (
        f"，出错 {run.rules_error} 条" if run.rules_error else ""
    )


def _recon(item: RunItem, run: Run) -> None:
    from caiwei.recon.services import start_run

    database = item.plan_item.database
    end = timezone.localtime(run.slot).date() - timedelta(days=1)
    recon = start_run(
        None,
        region=run.plan.region,
        database=database,
        period_start=end - timedelta(days=6),
        period_end=end,
        use_sandbox=database.target.is_sandbox,
        inline=True,
    )
    item.evidence = {
        "recon_run": recon.pk,
        "status": recon.status,
        "breaks_new": recon.breaks_new,
        "breaks_open": recon.breaks_open,
        "matched": recon.matched_by_key + recon.matched_by_attributes,
    }
    good = recon.status == "done" and not recon.breaks_open
    item.result = RunItem.Result.OK if good else RunItem.Result.ABNORMAL
    item.notes = (
        f"相符 {item.evidence['matched']} 笔，新差异 {recon.breaks_new} 笔，未解决差异 {recon.breaks_open} 笔"
    )


def execute(run: Run) -> Run:
    """Run every automated item of ``run`` that has no result yet (the worker's job)."""
    for item in run.items.filter(kind__in=AUTOMATED, result="").select_related("plan_item"):
        try:
            if item.plan_item is None:
                raise ValueError("巡检项已从计划中删除")
            if item.kind == "probe":
                _probe(item)
            elif item.kind == "check":
                _check(item)
            else:
                _recon(item, run)
        except Exception as exc:
            log.exception("inspection item %s failed", item.pk)
            item.result = RunItem.Result.ABNORMAL
            item.notes = f"自动巡检失败：{exc}"[:MAX_NOTES]
        item.checked_at = timezone.now()
        item.save(update_fields=["result", "notes", "evidence", "checked_at"])
    _maybe_done(run)
    return run


def _maybe_done(run: Run, user=None) -> None:
    """A run is 完成 when every item has a result."""
    if run.status == Run.Status.OPEN and not run.items.filter(result="").exists():
        run.status = Run.Status.DONE
        run.finished_at = timezone.now()
        run.finished_by = user
        run.save(update_fields=["status", "finished_at", "finished_by"])


# --- engineers ---------------------------------------------------------------------------------------------------


def _writable(user, run: Run) -> None:
    ensure(user, Capability.INSPECT_RUN, "inspect.run")
    if not visible_runs(user).filter(pk=run.pk).exists():
        raise PermissionDenied("无权执行该巡检")


def record_manual(user, item: RunItem, result: str, notes: str = "", files=()) -> RunItem:
    """An engineer's result of a manual item (正常/异常, notes, screenshots within the desk's attachment limits)."""
    from caiwei.desk.files import check_attachment

    _writable(user, item.run)
    if item.automated:
        raise ValidationError({"result": "自动巡检项的结果由系统探测得出，不能手工登记"})
    if result not in (RunItem.Result.OK, RunItem.Result.ABNORMAL):
        raise ValidationError({"result": "结果应为“正常”或“异常”"})
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES:
        raise ValidationError({"notes": f"说明不能超过 {MAX_NOTES} 字"})
    if result == RunItem.Result.ABNORMAL and not notes:
        raise ValidationError({"notes": "结果为异常时须填写说明"})
    uploads = []
    for f in files:
        problem = check_attachment(f.name, f.size)  # name, type and size before reading the bytes
        data = b"" if problem else f.read()
        problem = problem or check_attachment(f.name, len(data), data)
        if problem:
            raise ValidationError({"files": problem})
        uploads.append((f, data))
    with transaction.atomic():
        item.result, item.notes = result, notes
        item.checked_at, item.checked_by = timezone.now(), user
        item.save(update_fields=["result", "notes", "checked_at", "checked_by"])  # audited (audit.signals)
        from django.core.files.base import ContentFile

        for f, data in uploads:
            shot = Screenshot(
                item=item,
                name=f.name[:200],
                size=len(data),
                content_type=getattr(f, "content_type", "")[:100],
            )
            shot.file.save(f.name, ContentFile(data), save=True)
        _maybe_done(item.run, user)
    return item


def rerun_automated(user, run: Run):
    """Probe the automated items again now (their earlier results are replaced)."""
    _writable(user, run)
    if run.status == Run.Status.DONE:
        raise ValidationError({"run": "巡检已完成，不能重新探测"})
    run.items.filter(kind__in=AUTOMATED).update(result="", notes="", evidence={})
    return start_automated(run, user)


def finish(user, run: Run, conclusion: str) -> Run:
    """The engineer's conclusion (结论) for the report; the run must be complete."""
    _writable(user, run)
    conclusion = (conclusion or "").strip()
    if len(conclusion) > MAX_NOTES:
        raise ValidationError({"conclusion": f"巡检结论不能超过 {MAX_NOTES} 字"})
    pending = run.items.filter(result="").count()
    if pending:
        raise ValidationError({"run": f"还有 {pending} 个巡检项未登记结果"})
    run.conclusion = conclusion
    run.save(update_fields=["conclusion"])  # audited as a change of the run (audit.signals)
    _maybe_done(run, user)
    return run


def open_ticket(user, item: RunItem, severity: str = "一般"):
    """A 巡检 ticket for an abnormal item (once), opened by the desk's own path."""
    from caiwei.desk.models import Ticket
    from caiwei.desk.services import create_ticket

    _writable(user, item.run)
    if item.result != RunItem.Result.ABNORMAL:
        raise ValidationError({"result": "只有结果为异常的巡检项才能转工单"})
    if item.ticket_id:
        raise ValidationError({"ticket": f"已转工单 {item.ticket.number}"})
    if severity not in ("一般", "紧急", "重大"):
        raise ValidationError({"severity": "严重程度应为 一般、紧急 或 重大"})
    run = item.run
    ticket = create_ticket(
        user,
        region=run.plan.region,
        channel=Ticket.Channel.INSPECTION,
        system=run.plan.system,
        module="巡检",
        requester_kind=Ticket.RequesterKind.INTERNAL,
        ticket_type="故障",
        severity=severity,
        assignee=None,
        title=f"巡检异常：{item.name}"[:120],
        description=f"{run}\n巡检项：{item.name}\n{item.notes or '（无说明）'}",
        requester_name=user.get_full_name() or user.username,
    )
    item.ticket = ticket
    item.save(update_fields=["ticket"])
    return ticket


# --- the calendar and the KPI --------------------------------------------------------------------------------------


@dataclass
class Slot:
    plan: Plan
    at: datetime
    deadline: datetime
    items: list[PlanItem]
    run: Run | None

    def state(self, now: datetime) -> str:
        if self.run is not None and self.run.status == Run.Status.DONE:
            return "done" if self.run.on_time else "done_late"
        if now > self.deadline:
            return "late"
        return "open" if self.run is not None else "due"


STATE_LABELS = {
    "done": ("按时完成", "success"),
    "done_late": ("逾期完成", "warning"),
    "late": ("逾期未完成", "danger"),
    "open": ("进行中", "primary"),
    "due": ("待巡检", "secondary"),
}


def schedule(user, first: date, last: date, plans=None) -> list[Slot]:
    """Every due slot of the plans the user sees over ``first``..``last``, with its run (if the tick made it)."""
    plans = list((plans if plans is not None else visible_plans(user)).prefetch_related("items"))
    out: list[Slot] = []
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    runs = {
        (r.plan_id, r.slot): r
        for r in Run.objects.filter(
            plan__in=plans,
            slot__gte=start - timedelta(days=1),
            slot__lt=start + timedelta(days=(last - first).days + 2),
        )
    }
    for plan in plans:
        try:
            due = plan_slots(plan, first, last)
        except ValidationError:
            continue
        for at, items in due.items():
            out.append(
                Slot(plan, at, at + timedelta(minutes=plan.grace_minutes), items, runs.get((plan.pk, at)))
            )
    out.sort(key=lambda s: (s.at, s.plan.name))
    return out


def month_tally(user, year: int, month: int, now: datetime):
    """巡检完成率 of a month: slots done within their grace are met, slots past their deadline without an on-time
    finish are missed, the others are 进行中."""
    from caiwei.desk.kpi import Tally

    first = date(year, month, 1)
    last = (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)
    tally = Tally()
    for slot in schedule(user, first, last):
        if slot.at > now:
            continue
        state = slot.state(now)
        tally.add("met" if state == "done" else "missed" if state in ("late", "done_late") else "pending")
    return tally
