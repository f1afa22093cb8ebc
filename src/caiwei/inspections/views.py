"""巡检 pages: the inspection calendar (what is due, late or done per day of a week), the plans with their items,
the runs (an engineer ticks manual items with notes and screenshots, finishes with a conclusion) and the report."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from . import report, services
from .forms import ItemForm, PlanForm
from .models import PlanItem, RunItem

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "；".join(m for ms in exc.message_dict.values() for m in ms)
    return "；".join(exc.messages)


@require(Capability.INSPECT_VIEW)
def calendar(request):
    today = timezone.localdate()
    try:
        anchor = date.fromisoformat(request.GET.get("week", "")[:10])
    except ValueError:
        anchor = today
    first = anchor - timedelta(days=anchor.weekday())
    last = first + timedelta(days=6)
    now = timezone.now()
    days = {first + timedelta(days=n): [] for n in range(7)}
    counts = {k: 0 for k in services.STATE_LABELS}
    for slot in services.schedule(request.user, first, last):
        state = slot.state(now)
        counts[state] += 1
        label, css = services.STATE_LABELS[state]
        days[timezone.localtime(slot.at).date()].append(
            {"slot": slot, "state": state, "label": label, "css": css}
        )
    return render(
        request,
        "inspections/calendar.html",
        {
            "days": [(d, WEEKDAYS[d.weekday()], d == today, rows) for d, rows in days.items()],
            "first": first,
            "last": last,
            "prev": (first - timedelta(days=7)).isoformat(),
            "next": (first + timedelta(days=7)).isoformat(),
            "counts": [
                (services.STATE_LABELS[k][0], services.STATE_LABELS[k][1], v) for k, v in counts.items()
            ],
            "can_run": request.user.can(Capability.INSPECT_RUN),
            "can_plan": request.user.can(Capability.INSPECT_PLAN),
        },
    )


@require(Capability.INSPECT_RUN)
@require_POST
def tick(request):
    created = services.tick(plans=services.visible_plans(request.user))
    messages.success(request, f"已生成到期巡检 {len(created)} 次" if created else "没有新到期的巡检")
    return redirect("inspections:calendar")


@require(Capability.INSPECT_VIEW)
def plan_list(request):
    plans = services.visible_plans(request.user).prefetch_related("items")
    return render(
        request,
        "inspections/plans.html",
        {"plans": plans, "can_plan": request.user.can(Capability.INSPECT_PLAN)},
    )


@require(Capability.INSPECT_PLAN)
def plan_new(request):
    return _plan_form(request, None)


@require(Capability.INSPECT_VIEW)
def plan_edit(request, pk):
    plan = get_object_or_404(services.visible_plans(request.user), pk=pk)
    if request.method == "POST" and not request.user.can(Capability.INSPECT_PLAN):
        raise PermissionDenied("无权维护巡检计划")
    return _plan_form(request, plan)


def _plan_form(request, plan):
    initial = {"valid_from": timezone.localdate()} if plan is None else None
    form = PlanForm(request.POST or None, instance=plan, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_plan(request.user, form.instance)
        except ValidationError as exc:
            form.add_error(None, _errors(exc))
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"已保存巡检计划“{saved.name}”")
            return redirect("inspections:plan", saved.pk)
    items = list(plan.items.prefetch_related("monitor_items").select_related("database")) if plan else []
    edit = None
    if plan and request.GET.get("item", "").isdigit():
        edit = next((i for i in items if i.pk == int(request.GET["item"])), None)
    item_form = ItemForm(instance=edit, user=request.user, plan=plan) if plan else None
    return render(
        request,
        "inspections/plan.html",
        {
            "form": form,
            "plan": plan,
            "items": items,
            "item_form": item_form,
            "editing": edit,
            "can_plan": request.user.can(Capability.INSPECT_PLAN),
        },
    )


@require(Capability.INSPECT_PLAN)
@require_POST
def plan_item(request, pk):
    """Add (no ``item``), change (``item``) or delete (``item`` and ``delete``) an item of the plan."""
    plan = get_object_or_404(services.visible_plans(request.user), pk=pk)
    item = None
    if request.POST.get("item"):
        item = plan.items.filter(pk=request.POST["item"] if request.POST["item"].isdigit() else 0).first()
        if item is None:
            raise Http404("巡检项不存在")
    if item is not None and request.POST.get("delete"):
        services.delete_item(request.user, item)
        messages.success(request, f"已删除巡检项“{item.name}”")
        return redirect("inspections:plan", plan.pk)
    form = ItemForm(request.POST, instance=item or PlanItem(plan=plan), user=request.user, plan=plan)
    if form.is_valid():
        obj = form.save(commit=False)
        obj.plan = plan
        ids = [m.pk for m in form.cleaned_data.get("monitor_items") or []]
        try:
            services.save_item(request.user, obj, ids)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            messages.success(request, f"已保存巡检项“{obj.name}”")
            return redirect("inspections:plan", plan.pk)
    else:
        messages.error(
            request,
            "；".join(
                f"{form.fields[f].label if f in form.fields else '巡检项'}：{e}"
                for f, es in form.errors.items()
                for e in es
            ),
        )
    return redirect("inspections:plan", plan.pk)


@require(Capability.INSPECT_VIEW)
def run_list(request):
    runs = services.visible_runs(request.user)[:200]
    return render(request, "inspections/runs.html", {"runs": runs, "now": timezone.now()})


def _run_context(request, run):
    items = list(run.items.select_related("checked_by", "ticket", "plan_item").prefetch_related("shots"))
    for item in items:
        item.evidence_head, item.evidence_rows = report.evidence_rows(item)
    state = run.state()
    return {
        "run": run,
        "items": items,
        "state_label": {"done": "完成", "late": "逾期未完成", "open": "进行中"}[state],
        "state": state,
        "pending": sum(i.result == "" for i in items),
        "can_run": request.user.can(Capability.INSPECT_RUN),
        "results": [(RunItem.Result.OK, "正常"), (RunItem.Result.ABNORMAL, "异常")],
        "hx": bool(request.headers.get("HX-Request")),  # a full page shows the messages in the base template
    }


@require(Capability.INSPECT_VIEW)
def run_detail(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    template = "inspections/_run_body.html" if request.headers.get("HX-Request") else "inspections/run.html"
    return render(request, template, _run_context(request, run))


def _back(request, run):
    if request.headers.get("HX-Request"):
        return render(request, "inspections/_run_body.html", _run_context(request, run))
    return redirect("inspections:run", run.pk)


@require(Capability.INSPECT_RUN)
@require_POST
def run_record(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    raw = request.POST.get("item", "")
    item = run.items.filter(pk=raw if raw.isdigit() else 0).first()
    if item is None:
        messages.error(request, "巡检项：不存在")
        return _back(request, run)
    try:
        services.record_manual(
            request.user,
            item,
            request.POST.get("result", ""),
            request.POST.get("notes", ""),
            request.FILES.getlist("files"),
        )
    except ValidationError as exc:
        messages.error(request, f"“{item.name}”未登记：{_errors(exc)}")
        return _back(request, run)
    messages.success(request, f"已登记“{item.name}”")
    run.refresh_from_db()
    return _back(request, run)


@require(Capability.INSPECT_RUN)
@require_POST
def run_rerun(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    try:
        services.rerun_automated(request.user, run)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "已重新执行自动巡检项")
    return redirect("inspections:run", run.pk)


@require(Capability.INSPECT_RUN)
@require_POST
def run_finish(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    try:
        services.finish(request.user, run, request.POST.get("conclusion", ""))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "巡检已完成，可下载巡检报告")
    return redirect("inspections:run", run.pk)


@require(Capability.INSPECT_RUN)
@require_POST
def run_ticket(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    raw = request.POST.get("item", "")
    item = run.items.filter(pk=raw if raw.isdigit() else 0).first()
    if item is None:
        messages.error(request, "巡检项：不存在")
        return redirect("inspections:run", run.pk)
    try:
        ticket = services.open_ticket(request.user, item, request.POST.get("severity", "一般"))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"已转工单 {ticket.number}")
    return redirect("inspections:run", run.pk)


@require(Capability.INSPECT_VIEW)
def run_report(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    response = HttpResponse(report.render_docx(run), content_type=report.DOCX)
    from urllib.parse import quote

    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(report.file_name(run))}"
    return response


@require(Capability.INSPECT_VIEW)
def run_shot(request, pk, shot):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    from .models import Screenshot

    item = get_object_or_404(Screenshot, pk=shot, item__run=run)
    ext = item.name.lower().rsplit(".", 1)[-1]
    kind = {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "bmp": "image/bmp",
    }
    response = FileResponse(item.file.open("rb"), content_type=kind.get(ext, "application/octet-stream"))
    response["X-Content-Type-Options"] = "nosniff"
    if not item.is_image:
        from urllib.parse import quote

        response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(item.name)}"
    return response
