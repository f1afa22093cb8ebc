from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record_export
from caiwei.desk.models import SEVERITY_CHOICES

from . import services
from .engine import shipped_packs, shipped_rule
from .forms import DatabaseForm, RunForm, ScheduleForm, TargetForm
from .models import CheckRun
from .present import pair_rows, run_workbook, sample_columns


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 12 else None


def _errors(exc: ValidationError) -> str:
    return "；".join(exc.messages)


def _form_errors(form) -> str:
    """A bound form's errors with each field's label: “执行时间（cron）：这个字段是必填项。”."""
    return "；".join(
        f"{form.fields[f].label}：{'，'.join(e)}" if f in form.fields else "，".join(e)
        for f, e in form.errors.items()
    )


@require(Capability.CHECKS_VIEW)
def index(request):
    user = request.user
    databases = services.visible_databases(user).prefetch_related("schedules")
    latest = {}
    for run in services.visible_runs(user).filter(status=CheckRun.Status.DONE).order_by("-created_at")[:200]:
        latest.setdefault(run.database_id, run)
    rows = [{"db": db, "latest": latest.get(db.pk)} for db in databases]
    return render(
        request,
        "checks/index.html",
        {
            "rows": rows,
            "runs": services.visible_runs(user)[:20],
            "form": RunForm(databases=databases, initial={"sample": True}),
            "can_run": user.can(Capability.CHECKS_RUN),
            "can_manage": user.can(Capability.MANAGE_TARGETS),
            "target_form": TargetForm(user=user),
            "packs": shipped_packs(),
        },
    )


@require(Capability.CHECKS_RUN)
@require_POST
def start(request):
    form = RunForm(request.POST, databases=services.visible_databases(request.user))
    if not form.is_valid():
        messages.error(
            request,
            "；".join(
                f"{form.fields[f].label if f in form.fields else ''}{'：' if f in form.fields else ''}{'，'.join(e)}"
                for f, e in form.errors.items()
            ),
        )
        return redirect("checks:index")
    try:
        run = services.start_run(
            request.user,
            form.cleaned_data["database"],
            form.pack_names(),
            form.scope(),
            form.cleaned_data["sample"],
            params=form.cleaned_data["params"],
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("checks:index")
    return redirect("checks:run", run.pk)


@require(Capability.CHECKS_VIEW)
def rules(request):
    packs = shipped_packs()
    chosen = request.GET.get("pack")
    shown = {chosen: packs[chosen]} if chosen in packs else packs
    return render(request, "checks/rules.html", {"packs": packs, "shown": shown, "chosen": chosen})


@require(Capability.CHECKS_VIEW)
def run_detail(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    results = list(
        run.results.defer("keys", "sample", "new_keys", "resolved_keys").order_by("-count", "rule_id")
    )
    context = {
        "run": run,
        "results": results,
        "packs": shipped_packs(),
        "truth": services.sandbox_comparison(run),
    }
    if request.headers.get("HX-Request"):
        return render(request, "checks/_run.html", context)
    return render(request, "checks/run.html", context)


@require(Capability.CHECKS_VIEW)
def run_export(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    results = list(run.results.order_by("-count", "rule_id"))
    record_export("checks.run", sum(len(r.keys) for r in results), {"run": run.pk})
    response = HttpResponse(
        run_workbook(run, results),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="check-run-{run.pk}.xlsx"'
    return response


@require(Capability.CHECKS_VIEW)
def result_detail(request, pk):
    result = get_object_or_404(
        services.visible_results(request.user).select_related(
            "run", "run__database", "run__database__target", "ticket"
        ),
        pk=pk,
    )
    packs = shipped_packs()
    rule = shipped_rule(result.rule_id)
    local_rule = None
    if result.rule_version:  # 本地规则: the description and advice of the version that ran
        from .custom_services import rule_version_that_ran

        local_rule, rule = rule_version_that_ran(request.user, result)
    columns = sample_columns(rule, result.columns)
    can_run = request.user.can(Capability.CHECKS_RUN)
    return render(
        request,
        "checks/result.html",
        {
            "result": result,
            "rule": rule,
            "local_rule": local_rule,
            "pack": packs.get(result.pack),
            "amount_label": rule.amount_label if rule else "涉及金额",
            "columns": columns,
            "sample_rows": [[(c, row.get(c["name"])) for c in columns] for row in result.sample],
            "pairs": pair_rows(rule, result.columns, result.sample),
            "trend": services.trend(result),
            "can_run": can_run,
            "technical": request.user.can(Capability.MANAGE_TARGETS),
            "engineers": services.ticket_engineers(result.run.database.target.region) if can_run else [],
            "severities": [s for s, _ in SEVERITY_CHOICES],
        },
    )


@require(Capability.CHECKS_RUN)
@require_POST
def result_ticket(request, pk):
    result = get_object_or_404(
        services.visible_results(request.user).select_related("run__database__target__region"), pk=pk
    )
    assignee = None
    wanted = request.POST.get("assignee", "").strip()
    if wanted:
        assignee = (
            services.ticket_engineers(result.run.database.target.region).filter(pk=_int(wanted)).first()
        )
        if assignee is None:
            messages.error(request, "处理人不是该区划的二线工程师，请重新选择")
            return redirect("checks:result", pk)
    try:
        ticket = services.open_ticket(
            request.user, result, assignee=assignee, severity=request.POST.get("severity") or None
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("checks:result", pk)
    messages.success(request, f"已开工单 {ticket.number}")
    return redirect("desk:detail", ticket.number)


@require(Capability.MANAGE_TARGETS)
@require_POST
def target_new(request):
    form = TargetForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            target = services.save_target(request.user, form.save(commit=False))
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            messages.success(request, f"已登记运维对象“{target}”，请添加数据库")
            return redirect("checks:database_new", target.pk)
    else:
        messages.error(
            request,
            "；".join(
                f"{form.fields[f].label}：{'，'.join(e)}" for f, e in form.errors.items() if f in form.fields
            ),
        )
    return redirect("checks:index")


@require(Capability.MANAGE_TARGETS)
def database_new(request, target_pk):
    target = get_object_or_404(services.visible_targets(request.user), pk=target_pk)
    return _database_form(request, target, None)


@require(Capability.MANAGE_TARGETS)
def database_edit(request, pk):
    database = get_object_or_404(services.visible_databases(request.user), pk=pk)
    return _database_form(request, database.target, database)


def _database_form(request, target, database):
    form = DatabaseForm(request.POST or None, instance=database)
    if database is None:
        form.instance.target = target
    tested = None
    if request.method == "POST" and form.is_valid():
        candidate = form.save(commit=False)  # the form's values; the password (if typed) sealed for them
        if request.POST.get("action") == "test":
            # 测试连接（不保存）: only what the form holds — a stored password only with the unchanged connection.
            ok, message = services.test_connection(request.user, candidate)
            tested = {"ok": ok, "message": message}
            if database is not None:
                database.refresh_from_db()  # the page shows the stored database; the form keeps what was typed
        else:
            try:
                saved = services.save_database(request.user, candidate)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                ok, message = services.test_connection(request.user, saved)
                (messages.success if ok else messages.warning)(request, f"已保存。{message}")
                return redirect("checks:index")
    schedule_form = ScheduleForm(initial={"cron": "0 2 * * *", "sample": True, "enabled": True})
    return render(
        request,
        "checks/database_form.html",
        {
            "form": form,
            "target": target,
            "database": database,
            "schedule_form": schedule_form,
            "tested": tested,
        },
    )


@require(Capability.MANAGE_TARGETS)
@require_POST
def database_test(request, pk):
    database = get_object_or_404(services.visible_databases(request.user), pk=pk)
    ok, message = services.test_connection(request.user, database)
    (messages.success if ok else messages.error)(request, message)
    return redirect("checks:index")


@require(Capability.MANAGE_TARGETS)
@require_POST
def schedule_new(request, pk):
    database = get_object_or_404(services.visible_databases(request.user), pk=pk)
    form = ScheduleForm(request.POST)
    if form.is_valid():
        schedule = form.save(commit=False)
        schedule.database, schedule.packs = database, form.pack_names()
        try:
            services.save_schedule(request.user, schedule)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            messages.success(request, f"已添加定时检查，下次执行 {schedule.next_run_at:%Y-%m-%d %H:%M}")
    else:
        messages.error(request, _form_errors(form))
    return redirect("checks:index")


@require(Capability.MANAGE_TARGETS)
@require_POST
def schedule_change(request, pk):
    schedule = get_object_or_404(services.visible_schedules(request.user), pk=pk)
    done = {"enable": "已启用定时检查", "disable": "已停用定时检查", "delete": "已删除定时检查"}
    action = request.POST.get("action")
    if action not in done:
        messages.error(request, "未知的操作")
    else:
        services.change_schedule(
            request.user, schedule, enabled=action == "enable", delete=action == "delete"
        )
        messages.success(request, done[action])
    return redirect("checks:database_edit", schedule.database_id)
