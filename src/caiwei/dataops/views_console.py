"""查询台 pages: the console (choose a granted database, run, see the masked grid), the history, grants, column
classification and export requests (request, approve, download)."""

from __future__ import annotations

import re
from datetime import datetime, time

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.accounts.models import User
from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.checks.services import visible_databases
from caiwei.desk.services import visible_tickets

from . import services_console as services
from .models_console import KIND_CHOICES, ColumnClass


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "；".join(m for msgs in exc.message_dict.values() for m in msgs)
    return "；".join(exc.messages)


ASCII = re.compile(r"[A-Za-z_][A-Za-z0-9_.*:…/()' -]*[A-Za-z0-9_*)']|[A-Za-z_]")


def words(text: str) -> list[dict]:
    """A message split into text and code parts: SQL words and names are shown as code (the pages are Chinese)."""
    parts, last = [], 0
    for m in ASCII.finditer(text or ""):
        if m.start() > last:
            parts.append({"text": text[last : m.start()], "code": False})
        parts.append({"text": m.group(0), "code": True})
        last = m.end()
    if last < len(text or ""):
        parts.append({"text": text[last:], "code": False})
    return parts


def _page(request, template, context, status=200):
    context = {"can_grant": request.user.can(Capability.DATA_GRANT), **context}
    return render(request, template, context, status=status)


def _int(value) -> int | None:
    value = str(value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def _ticket(user, number):
    number = (number or "").strip()
    if not number:
        return None
    return visible_tickets(user).filter(number=number).first()


@require(Capability.DATA_QUERY)
def console_page(request):
    user = request.user
    databases = list(services.query_databases(user))
    chosen = _int(request.GET.get("database"))
    database = next((d for d in databases if d.pk == chosen), databases[0] if databases else None)
    ticket = _ticket(user, request.GET.get("ticket"))
    grant = services.active_grant(user, database) if database else None
    return _page(
        request,
        "dataops/console/console.html",
        {
            "databases": databases,
            "database": database,
            "grant": grant,
            "ticket": ticket,
            "ticket_missing": bool(request.GET.get("ticket")) and ticket is None,
            "sql": request.GET.get("sql", "")[:2000],
            "recent": services.visible_logs(user).filter(user=user)[:10],
        },
    )


@require(Capability.DATA_QUERY)
@require_POST
def run(request):
    user = request.user
    database = services.query_databases(user).filter(pk=_int(request.POST.get("database"))).first()
    ticket = _ticket(user, request.POST.get("ticket"))
    context = {"refusal": "", "result": None, "log": None}
    status = 200
    if database is None:
        context["refusal"] = "请选择一个您有有效查询授权的数据库"
        status = 400
    else:
        try:
            log, result, refusal = services.run_query(
                user, database, request.POST.get("sql", ""), ticket=ticket
            )
        except ValidationError as exc:
            context["refusal"], status = _errors(exc), 400
        else:
            context.update(log=log, result=result, refusal=refusal)
            context["error_words"] = words(result.error) if result else []
            if result is not None:
                masked_cells = set(result.masked_cells)
                context["grid"] = [
                    [
                        {"value": v, "masked": c in result.masked_columns or (r, c) in masked_cells}
                        for c, v in enumerate(row)
                    ]
                    for r, row in enumerate(result.rows)
                ]
                context["headers"] = [
                    {"name": n, "masked": i in result.masked_columns} for i, n in enumerate(result.columns)
                ]
    context["refusal_words"] = words(context["refusal"])
    template = "dataops/console/_result.html"
    if request.headers.get("HX-Request"):
        status = 200  # htmx swaps only a success: the refusal is the answer shown in place
    else:
        template = "dataops/console/result_page.html"
    return _page(request, template, context, status=status)


@require(Capability.DATA_QUERY)
def history(request):
    logs = services.visible_logs(request.user)
    page = Paginator(logs, 50).get_page(request.GET.get("page"))
    for log in page:
        log.refusal_words, log.error_words = words(log.refusal), words(log.error)
        log.shown = services.shown_sql(log, request.user)
    return _page(request, "dataops/console/history.html", {"page": page})


# --- grants -----------------------------------------------------------------------------------------------------


def _grant_form_context(user):
    from caiwei.accounts.roles import CAPABILITIES

    roles = CAPABILITIES[Capability.DATA_QUERY]
    people = User.objects.filter(is_active=True, role_grants__role__in=roles).distinct().order_by("username")
    return {
        "databases": services.grantable_databases(user),
        "people": people,
        "tables": sorted(services.schema()),
    }


@require(Capability.DATA_GRANT)
def grants(request):
    user = request.user
    if request.method == "POST":
        data = request.POST
        until = None
        try:
            day = datetime.strptime(data.get("valid_until", ""), "%Y-%m-%d").date()
            until = timezone.make_aware(datetime.combine(day, time(23, 59, 59)))
        except ValueError:
            pass
        try:
            if until is None:
                raise ValidationError({"valid_until": "有效期应为日期，如 2026-12-31"})
            services.grant(
                user,
                user=User.objects.filter(pk=_int(data.get("user"))).first(),
                database=services.grantable_databases(user).filter(pk=_int(data.get("database"))).first(),
                tables=data.getlist("tables"),
                valid_until=until,
                row_limit=_int(data.get("row_limit")) or 0,
                timeout_s=_int(data.get("timeout_s")) or 0,
                reason=data.get("reason", ""),
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            context = _grant_form_context(user) | {
                "grants": services.visible_grants(user)[:200],
                "form": data,
            }
            return _page(request, "dataops/console/grants.html", context, status=400)
        messages.success(request, "已授权")
        return redirect("dataops:query_grants")
    context = _grant_form_context(user) | {"grants": services.visible_grants(user)[:200], "form": {}}
    return _page(request, "dataops/console/grants.html", context)


@require(Capability.DATA_GRANT)
@require_POST
def grant_revoke(request, pk):
    g = get_object_or_404(services.visible_grants(request.user), pk=pk)
    try:
        services.revoke(request.user, g)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("dataops:query_grants")
    messages.success(request, "已收回授权")
    return redirect("dataops:query_grants")


# --- classification ---------------------------------------------------------------------------------------------


@require(Capability.DATA_QUERY)
def classes_index(request):
    user = request.user
    databases = (
        services.grantable_databases(user)
        if user.can(Capability.DATA_GRANT)
        else services.query_databases(user)
    )
    return _page(request, "dataops/console/classes_index.html", {"databases": databases})


@require(Capability.DATA_QUERY)
def classes(request, pk):
    user = request.user
    database = get_object_or_404(visible_databases(user), pk=pk)
    status = 200
    if request.method == "POST":
        try:
            services.set_column_class(
                user,
                database,
                request.POST.get("table", ""),
                request.POST.get("column", ""),
                request.POST.get("kind", ""),
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            status = 400
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            messages.success(request, "已保存列分级")
            return redirect("dataops:query_classes", database.pk)
    services.ensure_classification(database)
    rows = ColumnClass.objects.filter(database=database).select_related("updated_by")
    return _page(
        request,
        "dataops/console/classes.html",
        {
            "database": database,
            "rows": rows,
            "kinds": KIND_CHOICES,
            "can_edit": user.can(Capability.DATA_GRANT),
            "tables": services.schema(),
        },
        status=status,
    )


# --- exports ----------------------------------------------------------------------------------------------------


@require(Capability.DATA_QUERY)
@require_POST
def export_new(request, pk):
    log = get_object_or_404(services.visible_logs(request.user), pk=pk)
    try:
        services.request_export(request.user, log, request.POST.get("reason", ""))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _errors(exc) if isinstance(exc, ValidationError) else str(exc))
        return redirect("dataops:query_history")
    messages.success(request, "已提交导出申请，待另一人审批")
    return redirect("dataops:query_exports")


def _export_access(user) -> None:
    if not (user.can(Capability.DATA_QUERY) or services.may_decide_exports(user)):
        raise PermissionDenied("您的角色不能查看导出申请")


def exports(request):
    _export_access(request.user)
    page = Paginator(services.visible_exports(request.user), 50).get_page(request.GET.get("page"))
    for e in page:
        e.shown = services.shown_sql(e.log, request.user)
    return _page(
        request,
        "dataops/console/exports.html",
        {"page": page, "can_decide": services.may_decide_exports(request.user)},
    )


@require_POST
def export_decide(request, pk):
    _export_access(request.user)
    export = get_object_or_404(services.visible_exports(request.user), pk=pk)
    decision = request.POST.get("decision", "")
    if decision not in ("approve", "reject"):
        messages.error(request, "请选择批准或驳回")
        return redirect("dataops:query_exports")
    try:
        services.decide_export(request.user, export, decision == "approve", request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "已审批")
    return redirect("dataops:query_exports")


def export_download(request, pk):
    _export_access(request.user)
    export = get_object_or_404(services.visible_exports(request.user), pk=pk)
    try:
        name, data = services.export_workbook(request.user, export)
    except services.NotReady as exc:
        return _page(request, "dataops/console/export_error.html", {"words": words(str(exc))}, status=409)
    except ValidationError as exc:
        return _page(request, "dataops/console/export_error.html", {"words": words(_errors(exc))}, status=400)
    response = HttpResponse(
        data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
