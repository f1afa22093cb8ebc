"""对账 pages: runs (start one on uploaded bank files or the sandbox's, follow it), breaks (owner, comments,
tickets, resolve with a reason), and the bank file formats (edit as YAML, preview a sample file)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.desk.models import SEVERITY_CHOICES
from caiwei.regions.scoping import visible_regions

from . import services
from .engine import BREAKS
from .forms import FILE_ROWS, FormatForm, RunForm, uploads_from
from .models import BankFormat, ReconBreak


def _errors(exc: ValidationError) -> str:
    return "；".join(exc.messages)


def _form_errors(form) -> str:
    return "；".join(
        f"{form.fields[f].label}：{'，'.join(e)}" if f in form.fields else "，".join(e)
        for f, e in form.errors.items()
    )


def _int(value) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 7 else None


def _run_form(user, data=None):
    return RunForm(
        data,
        regions=visible_regions(user).order_by("path"),
        databases=services.run_databases(user),
        initial={"date_window": 1, "amount": "0.00", "transit_days": 10},
    )


@require(Capability.RECON_VIEW)
def index(request):
    user = request.user
    services.ensure_shipped_formats()
    can_run = user.can(Capability.RECON_RUN)
    form = _run_form(user) if can_run else None
    page = Paginator(services.visible_runs(user), 30).get_page(request.GET.get("page"))
    return render(
        request,
        "recon/index.html",
        {
            "page": page,
            "form": form,
            "can_run": can_run,
            "can_formats": user.can(Capability.RECON_FORMATS),
            "formats": BankFormat.objects.all(),
            "file_rows": range(FILE_ROWS),
            "open_breaks": services.visible_breaks(user).filter(state=ReconBreak.State.OPEN).count(),
        },
    )


@require(Capability.RECON_RUN)
@require_POST
def start(request):
    form = _run_form(request.user, request.POST)
    uploads, problems = uploads_from(request)
    if not form.is_valid() or problems:
        messages.error(
            request, "；".join(filter(None, [_form_errors(form) if form.is_bound else "", *problems]))
        )
        return redirect("recon:index")
    d = form.cleaned_data
    try:
        run = services.start_run(
            request.user,
            region=d["region"],
            database=d["database"],
            period_start=d["period_start"],
            period_end=d["period_end"],
            as_of=d["as_of"],
            tolerance=form.tolerance(),
            uploads=uploads,
            use_sandbox=d["use_sandbox"],
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("recon:index")
    return redirect("recon:run", run.pk)


def _by_class(breaks) -> list[dict]:
    groups: dict[str, list] = {}
    for b in breaks:
        groups.setdefault(b.kind, []).append(b)
    return [
        {"kind": k, "label": BREAKS[k].split("：")[0], "reason": BREAKS[k], "breaks": groups[k]}
        for k in BREAKS
        if k in groups
    ]


@require(Capability.RECON_VIEW)
def run_detail(request, pk):
    run = get_object_or_404(services.visible_runs(request.user), pk=pk)
    breaks = (
        services.visible_breaks(request.user)
        .filter(last_run=run)
        .select_related("owner", "ticket")
        .order_by("kind", "pk")
    )
    context = {
        "run": run,
        "job": services.run_job(run),
        "groups": _by_class(breaks[:2000]),
        "break_count": breaks.count(),
        "sources": services.source_rows(run, request.user),
        "bank_only_view": services.restricted_bank(request.user) is not None,
    }
    if request.headers.get("HX-Request"):
        return render(request, "recon/_run.html", context)
    return render(request, "recon/run.html", context)


@require(Capability.RECON_VIEW)
def breaks(request):
    user = request.user
    qs = services.visible_breaks(user)
    q = request.GET
    state = q.get("state", "open")
    if state not in ReconBreak.State.values and state != "all":
        state = "open"
    kind = q.get("kind", "") if q.get("kind", "") in BREAKS else ""
    bank = q.get("bank", "").strip()[:12]
    min_age, max_age = _int(q.get("min_age")), _int(q.get("max_age"))
    qs = services.filter_breaks(
        qs,
        state="" if state == "all" else state,
        kind=kind,
        bank=bank,
        min_age=min_age,
        max_age=max_age,
        run=_int(q.get("run")),
        owner=q.get("owner", "").strip()[:150],
    ).order_by("created_at", "pk")
    page = Paginator(qs, 50).get_page(q.get("page"))
    banks = sorted(
        set(
            services.visible_breaks(user).exclude(bank_code="").values_list("bank_code", flat=True).distinct()
        )
    )
    return render(
        request,
        "recon/breaks.html",
        {
            "page": page,
            "state": state,
            "kind": kind,
            "bank": bank,
            "min_age": min_age,
            "max_age": max_age,
            "states": ReconBreak.State.choices,
            "kinds": [(k, v.split("：")[0]) for k, v in BREAKS.items()],
            "banks": banks,
        },
    )


@require(Capability.RECON_VIEW)
def break_detail(request, pk):
    user = request.user
    brk = get_object_or_404(
        services.visible_breaks(user).select_related("first_run", "last_run", "resolved_by"), pk=pk
    )
    can_run = user.can(Capability.RECON_RUN)
    from caiwei.checks.services import ticket_engineers

    return render(
        request,
        "recon/break.html",
        {
            "brk": brk,
            "comments": brk.comments.select_related("author"),
            "can_run": can_run,
            "owners": services.break_owners(brk.region) if can_run else [],
            "engineers": ticket_engineers(brk.region) if can_run else [],
            "severities": [s for s, _ in SEVERITY_CHOICES],
            "age": brk.age_days(),
        },
    )


@require(Capability.RECON_RUN)
@require_POST
def break_action(request, pk):
    user = request.user
    brk = get_object_or_404(services.visible_breaks(user), pk=pk)
    action = request.POST.get("action", "")
    try:
        if action == "assign":
            wanted = request.POST.get("owner", "").strip()
            owner = None
            if wanted:
                owner = services.break_owners(brk.region).filter(pk=_int(wanted)).first()
                if owner is None:
                    raise ValidationError("责任人须是能处理该区划对账差异的账号，请重新选择")
            services.assign_break(user, brk, owner)
            messages.success(request, f"已指定责任人：{owner}" if owner else "已取消责任人")
        elif action == "resolve":
            services.resolve_break(user, brk, request.POST.get("reason", ""))
            messages.success(request, "已标为已解决")
        elif action == "link":
            services.link_ticket(user, brk, request.POST.get("ticket", ""))
            messages.success(request, "已关联工单")
        elif action == "ticket":
            from caiwei.checks.services import ticket_engineers

            assignee = None
            wanted = request.POST.get("assignee", "").strip()
            if wanted:
                assignee = ticket_engineers(brk.region).filter(pk=_int(wanted)).first()
                if assignee is None:
                    raise ValidationError("处理人不是该区划的二线工程师，请重新选择")
            ticket = services.open_ticket(
                user, brk, assignee=assignee, severity=request.POST.get("severity") or None
            )
            messages.success(request, f"已开工单 {ticket.number}")
        else:
            messages.error(request, "未知的操作")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("recon:break", pk)


@require(Capability.RECON_VIEW)
@require_POST
def break_comment(request, pk):
    brk = get_object_or_404(services.visible_breaks(request.user), pk=pk)
    try:
        services.comment_break(request.user, brk, request.POST.get("text", ""))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "已添加意见")
    return redirect("recon:break", pk)


# --- bank file formats ------------------------------------------------------------------------------------------


@require(Capability.RECON_FORMATS)
def format_list(request):
    services.ensure_shipped_formats()
    return render(request, "recon/formats.html", {"formats": services.visible_formats(request.user)})


@require(Capability.RECON_FORMATS)
def format_new(request):
    return _format_form(request, None)


@require(Capability.RECON_FORMATS)
def format_edit(request, pk):
    fmt = get_object_or_404(services.visible_formats(request.user), pk=pk)
    return _format_form(request, fmt)


def _format_form(request, fmt):
    editing = fmt is not None
    initial = (
        {"name": fmt.name, "bank_code": fmt.bank_code, "definition": fmt.definition}
        if editing
        else {"definition": (services.formats.LAYOUT_DIR / "csv-gbk.yaml").read_text(encoding="utf-8")}
    )
    form = FormatForm(request.POST or None, initial=initial, editing=editing)
    preview = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        if request.POST.get("action") == "preview":
            upload = request.FILES.get("sample")
            if upload is None:
                form.add_error(None, "请选择要预览的样例文件")
            else:
                preview = services.preview_format(request.user, d["definition"], upload)
        else:
            try:
                saved = services.save_format(
                    request.user,
                    fmt,
                    definition=d["definition"],
                    name=d["name"],
                    bank_code=d["bank_code"],
                    code=d.get("code", ""),
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                messages.success(request, f"已保存“{saved.name}”第 {saved.version} 版")
                return redirect("recon:format", saved.pk)
    return render(request, "recon/format.html", {"form": form, "fmt": fmt, "preview": preview})
