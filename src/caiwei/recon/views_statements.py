"""对账单与签认: the statements of a run per bank and month (or day), their files, and the monthly sign-off."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record_export

from . import services, statements


def _month(value: str | None) -> date | None:
    try:
        return date.fromisoformat(f"{value}-01") if value else None
    except ValueError:
        return None


def _run_url(run, bank: str = "", month: str = "", day: str = "") -> str:
    query = "&".join(f"{k}={v}" for k, v in (("bank", bank), ("month", month), ("day", day)) if v)
    return reverse("recon_statements:run", args=[run.pk]) + (f"?{query}" if query else "")


@require(Capability.RECON_VIEW)
def index(request):
    runs = list(services.statement_runs(request.user).order_by("-finished_at", "-pk")[:50])
    signoffs = list(services.visible_signoffs(request.user).order_by("-month", "bank_code")[:100])
    for s in signoffs:
        s.bank_name = statements.bank_name(s.bank_code)
    return render(
        request,
        "recon/statements/index.html",
        {"runs": runs, "signoffs": signoffs, "no_bank": _no_bank(request.user)},
    )


def _no_bank(user) -> bool:
    from caiwei.accounts.roles import FINANCE_ROLES, OPS_ROLES

    return not user.has_role(*OPS_ROLES, *FINANCE_ROLES) and not user.bank_code


@require(Capability.RECON_VIEW)
def run_page(request, pk):
    run = get_object_or_404(services.statement_runs(request.user), pk=pk)
    rows = services.overview(request.user, run)
    banks = [b for b in statements.banks_of(run) if b in {r["bank"] for r in rows}]
    bank = request.GET.get("bank") if request.GET.get("bank") in banks else (banks[0] if banks else "")
    months = statements.months_of(run)
    month = _month(request.GET.get("month"))
    if month not in months:
        month = months[-1] if months else None
    day = request.GET.get("day") or ""
    current = next((r for r in rows if r["bank"] == bank and r["month"] == month), None)
    statement = error = None
    if current is not None:
        try:
            if day:
                statement = statements.statement_for(run, bank, "day", day)
                if statement.period.start.replace(day=1) != month:
                    month = statement.period.start.replace(day=1)
                    current = next((r for r in rows if r["bank"] == bank and r["month"] == month), current)
            else:
                statement = statements.statement_for(run, bank, "month", month)
        except statements.StatementError as exc:
            error = str(exc)
            day = ""
    days = [d["day"] for d in current["statement"].days] if current else []
    tables = {}
    if statement is not None:
        tables = {
            "balance": statements.balance_rows(statement),
            "summary": statements.summary_rows(statement)[1:],
            "day_rows": statements.day_rows(statement),
            "break_rows": statements.break_table(statement),
            "clearing_rows": statements.clearing_table(statement),
            "meta": statements.meta_rows(statement),
        }
    return render(
        request,
        "recon/statements/run.html",
        {
            "run": run,
            "rows": rows,
            "banks": [(b, statements.bank_name(b)) for b in banks],
            "bank": bank,
            "bank_name": statements.bank_name(bank) if bank else "",
            "months": months,
            "month": month,
            "month_key": month.isoformat()[:7] if month else "",
            "day": day,
            "days": days,
            "current": current,
            "statement": statement,
            "error": error,
            "no_bank": _no_bank(request.user),
            "day_header": statements.DAY_HEADER,
            "break_header": statements.BREAK_HEADER,
            **tables,
        },
    )


@require(Capability.RECON_VIEW)
def download(request, pk):
    run = get_object_or_404(services.statement_runs(request.user), pk=pk)
    bank, period = request.GET.get("bank", ""), request.GET.get("period", "month")
    value, fmt = request.GET.get("date", ""), request.GET.get("format", "xlsx")
    if not bank:
        messages.error(request, "请选择银行")
        return redirect(_run_url(run))
    if bank not in services.statement_banks(request.user, run):
        raise Http404("该银行的对账单不在您的授权范围内")
    try:
        s = statements.statement_for(run, bank, period, value or None)
        signoff = (
            services.signoff_of(run, bank, s.period.start.replace(day=1))
            if s.period.kind == "month"
            else None
        )
        name, content_type, data = statements.render(s, fmt, signoff)
    except statements.StatementError as exc:
        messages.error(request, str(exc))
        return redirect(_run_url(run, bank))
    record_export(
        "recon.statement", len(s.days), {"run": run.pk, "bank": bank, "period": s.period.key, "format": fmt}
    )
    response = HttpResponse(data, content_type=content_type)
    from urllib.parse import quote

    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response


@require(Capability.RECON_SIGN)
@require_POST
def sign(request, pk):
    run = get_object_or_404(services.statement_runs(request.user), pk=pk)
    bank, month = request.POST.get("bank", ""), _month(request.POST.get("month"))
    side = request.POST.get("side") or None
    if not bank or month is None:
        messages.error(request, "请选择银行和月份")
        return redirect(_run_url(run))
    try:
        done = services.sign(request.user, run, bank, month, side)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        text = f"已签认{statements.cn_month(month)}{statements.bank_label(bank)}的对账：{done.get_state_display()}"
        if done.state == done.State.SIGNED:
            text += "。该月已只读。"
        messages.success(request, text)
    return redirect(_run_url(run, bank, month.isoformat()[:7]))
