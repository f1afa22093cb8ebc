"""数据变更 pages: list, new/edit (SQL or guided fix, review shown live with htmx), detail with the before/after
images (masked) and the journal, approve/reject, execute (worker job), rollback with the conflicts shown first."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from . import changes_services as services
from .models_changes import ChangeAttempt, ChangeRequest

S = ChangeRequest.Status


def _errors(exc: ValidationError) -> str:
    return "；".join(exc.messages)


class ChangeForm(forms.Form):
    database = forms.ModelChoiceField(label="目标数据库", queryset=None, empty_label="请选择")
    title = forms.CharField(label="标题", max_length=120)
    reason = forms.CharField(label="变更原因", widget=forms.Textarea(attrs={"rows": 2}))
    mode = forms.ChoiceField(
        label="写法",
        choices=[("sql", "直接写 SQL"), ("fix", "引导式修复")],
        initial="sql",
        widget=forms.RadioSelect,
    )
    sql = forms.CharField(
        label="变更 SQL", required=False, widget=forms.Textarea(attrs={"rows": 6, "class": "font-monospace"})
    )
    fix_table = forms.CharField(label="表", required=False, max_length=120)
    fix_column = forms.CharField(label="要修改的列", required=False, max_length=120)
    fix_value = forms.CharField(label="新值", required=False, max_length=500)
    fix_null = forms.BooleanField(label="改为空值（NULL）", required=False)
    fix_key_columns = forms.CharField(label="主键列", required=False, max_length=300, help_text="逗号分隔")
    fix_keys = forms.CharField(
        label="这些主键的行",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="每行一个主键；多列主键用“/”分隔各列的值",
    )
    declares_ddl = forms.BooleanField(label="含 DDL（建表、改表结构）", required=False)
    emergency_plan = forms.CharField(
        label="应急方案", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    rollback_plan = forms.CharField(
        label="回退方案", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    window_start = forms.DateTimeField(
        label="执行窗口开始", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    window_end = forms.DateTimeField(
        label="执行窗口结束", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["database"].queryset = services.change_databases(user)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, forms.Select) and not isinstance(widget, forms.RadioSelect):
                widget.attrs.setdefault("class", "form-select form-select-sm")
            elif not isinstance(widget, forms.RadioSelect):
                widget.attrs["class"] = (
                    widget.attrs.get("class", "") + " form-control form-control-sm"
                ).strip()

    def fix(self) -> dict:
        d = self.cleaned_data
        if d.get("mode") != "fix":
            return {}
        keys = [
            [v.strip() for v in line.split("/")]
            for line in (d.get("fix_keys") or "").splitlines()
            if line.strip()
        ]
        return {
            "table": d.get("fix_table", "").strip(),
            "column": d.get("fix_column", "").strip(),
            "value": None if d.get("fix_null") else d.get("fix_value", ""),
            "key_columns": [c.strip() for c in (d.get("fix_key_columns") or "").split(",") if c.strip()],
            "keys": keys,
        }

    def fields_for_save(self) -> dict:
        d = self.cleaned_data
        fix = self.fix()
        return {
            "database": d["database"],
            "title": d["title"],
            "reason": d["reason"],
            "sql": "" if fix else d.get("sql", ""),
            "fix": fix,
            "declares_ddl": d.get("declares_ddl", False),
            "emergency_plan": d.get("emergency_plan", ""),
            "rollback_plan": d.get("rollback_plan", ""),
            "window_start": d.get("window_start"),
            "window_end": d.get("window_end"),
        }


def _form_errors(form) -> str:
    return "；".join(
        f"{form.fields[f].label}：{'，'.join(e)}" if f in form.fields else "，".join(e)
        for f, e in form.errors.items()
    )


def _initial_from(change: ChangeRequest) -> dict:
    fix = change.fix or {}
    return {
        "database": change.database_id,
        "title": change.title,
        "reason": change.reason,
        "mode": "fix" if fix else "sql",
        "sql": "" if fix else change.sql,
        "fix_table": fix.get("table", ""),
        "fix_column": fix.get("column", ""),
        "fix_value": "" if fix.get("value") is None else fix.get("value"),
        "fix_null": bool(fix) and fix.get("value") is None,
        "fix_key_columns": ", ".join(fix.get("key_columns") or []),
        "fix_keys": "\n".join("/".join(str(v) for v in k) for k in fix.get("keys") or []),
        "declares_ddl": change.declares_ddl,
        "emergency_plan": change.emergency_plan,
        "rollback_plan": change.rollback_plan,
        "window_start": change.window_start,
        "window_end": change.window_end,
    }


@require(Capability.DATA_VIEW)
def change_list(request):
    qs = services.visible_changes(request.user)
    status = request.GET.get("status", "")
    if status in S.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "dataops/changes/list.html",
        {
            "page": page,
            "statuses": S.choices,
            "status": status,
            "can_change": request.user.can(Capability.DATA_CHANGE),
        },
    )


@require(Capability.DATA_CHANGE)
def change_new(request):
    user = request.user
    ticket, origin, origin_ref, initial, note = None, "", "", {}, ""
    number = (request.GET.get("ticket") or request.POST.get("ticket") or "").strip()[:20]
    finding = (request.GET.get("finding") or request.POST.get("finding") or "").strip()
    if number:
        from caiwei.desk.services import visible_tickets

        ticket = visible_tickets(user).filter(number=number).first()
        if ticket is None:
            messages.error(request, f"工单“{number}”不存在或不在您的授权区划内")
            return redirect("dataops:changes")
        origin, origin_ref = ChangeRequest.Origin.TICKET, ticket.number
        initial.update(title=ticket.title[:120], reason=f"工单 {ticket.number}：{ticket.title}")
    if finding:
        try:
            prefill = services.finding_prefill(user, finding)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            return redirect("dataops:changes")
        initial.update(prefill["initial"])
        note = prefill["note"]
        origin, origin_ref = ChangeRequest.Origin.FINDING, prefill["ref"]
        ticket = ticket or prefill["ticket"]
    form = ChangeForm(request.POST or None, user=user, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            change = ChangeRequest(author=user, ticket=ticket, origin=origin, origin_ref=origin_ref)
            try:
                change = services.save_change(user, change, **form.fields_for_save())
            except ValidationError as exc:
                messages.error(request, _errors(exc))
            else:
                messages.success(request, f"已保存 {change.number}（草稿）")
                return redirect("dataops:change", change.pk)
        else:
            messages.error(request, _form_errors(form))
    return render(
        request,
        "dataops/changes/form.html",
        {"form": form, "ticket": ticket, "finding": finding, "note": note, "change": None},
    )


@require(Capability.DATA_CHANGE)
def change_edit(request, pk):
    change = get_object_or_404(services.visible_changes(request.user), pk=pk)
    if not change.is_editable:
        messages.error(request, f"变更处于“{change.get_status_display()}”状态，不能修改")
        return redirect("dataops:change", pk)
    form = ChangeForm(request.POST or None, user=request.user, initial=_initial_from(change))
    if request.method == "POST":
        if form.is_valid():
            try:
                change = services.save_change(request.user, change, **form.fields_for_save())
            except ValidationError as exc:
                messages.error(request, _errors(exc))
            else:
                messages.success(request, "已保存" + ("，已退回待审批" if change.status == S.PENDING else ""))
                return redirect("dataops:change", change.pk)
        else:
            messages.error(request, _form_errors(form))
    return render(request, "dataops/changes/form.html", {"form": form, "change": change})


@require(Capability.DATA_CHANGE)
@require_POST
def change_review(request):
    """htmx: the review rules over what is in the form now (nothing saved)."""
    form = ChangeForm(request.POST, user=request.user)
    form.is_valid()
    d = form.cleaned_data
    context = {"findings": [], "statements": [], "error": ""}
    database = d.get("database")
    if database is None:
        context["error"] = "请先选择目标数据库"
    else:
        try:
            fix = form.fix()
            sql = services.fix_sql(database, fix) if fix else d.get("sql", "")
            review = services.run_review(database, sql, d.get("declares_ddl", False))
            context.update(
                findings=[f.as_dict() for f in review.findings],
                statements=review.statements,
                sql=sql,
                total=review.estimated_rows,
                ok=review.ok,
            )
        except ValidationError as exc:
            context["error"] = _errors(exc)
    return render(request, "dataops/changes/_review.html", context)


@require(Capability.DATA_VIEW)
def change_detail(request, pk):
    change = get_object_or_404(services.visible_changes(request.user), pk=pk)
    user = request.user
    return render(
        request,
        "dataops/changes/detail.html",
        {
            "change": change,
            "plan": services.plan_of(change),
            "attempts": change.attempts.select_related("by").order_by("started_at", "pk"),
            "images": services.images_for_display(change),
            "journal": services.journal_for_display(change),
            "can_change": user.can(Capability.DATA_CHANGE),
            "can_approve": user.can(Capability.DATA_APPROVE) and change.author_id != user.pk,
            "in_window": change.in_window(),
            "job": _last_job(change),
        },
    )


def _last_job(change):
    from caiwei.jobs.models import Job

    return Job.objects.filter(kind="dataops.change_execute", params__change=change.pk).order_by("-pk").first()


@require(Capability.DATA_CHANGE)
@require_POST
def change_submit(request, pk):
    change = get_object_or_404(services.visible_changes(request.user), pk=pk)
    try:
        services.submit(request.user, change)
        messages.success(request, "已提交审批")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("dataops:change", pk)


@require(Capability.DATA_APPROVE)
@require_POST
def change_decide(request, pk):
    change = get_object_or_404(services.visible_changes(request.user), pk=pk)
    decision = request.POST.get("decision", "")
    try:
        if decision not in ("approve", "reject"):
            raise ValidationError("请选择批准或驳回")
        services.decide(
            request.user, change, approve=decision == "approve", note=request.POST.get("note", "")
        )
        messages.success(request, "已批准" if decision == "approve" else "已驳回，退回草稿")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("dataops:change", pk)


@require(Capability.DATA_CHANGE)
@require_POST
def change_execute(request, pk):
    change = get_object_or_404(services.visible_changes(request.user), pk=pk)
    try:
        job = services.start_execute(request.user, change)
        change.refresh_from_db()
        if change.status == S.DONE:
            messages.success(request, f"已执行：{change.status_note}")
        elif job.finished and change.status == S.FAILED:
            messages.error(request, f"执行失败：{change.status_note}")
        else:
            messages.info(request, "已交给后台执行")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    return redirect("dataops:change", pk)


@require(Capability.DATA_CHANGE)
def change_rollback(request, pk):
    change = get_object_or_404(services.visible_changes(request.user), pk=pk)
    if request.method == "POST":
        skip = request.POST.get("skip_conflicts") == "on"
        try:
            attempt = services.rollback(request.user, change, skip_conflicts=skip)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            return redirect("dataops:change", pk)
        if attempt.state == ChangeAttempt.State.APPLIED:
            messages.success(
                request,
                f"已回滚 {attempt.rows} 行"
                + (f"，{len(attempt.conflicts)} 行冲突未动" if attempt.conflicts else ""),
            )
            return redirect("dataops:change", pk)
        messages.error(request, attempt.message or attempt.get_state_display())
        return redirect("dataops:change_rollback", pk)
    try:
        conflicts = services.rollback_preview(request.user, change)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("dataops:change", pk)
    return render(request, "dataops/changes/rollback.html", {"change": change, "conflicts": conflicts})
