from datetime import date
from urllib.parse import quote

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.accounts.models import User
from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from . import flow, kpi, services, timeline
from .forms import CallForm, TicketForm
from .models import HotlineCall, MailIntake, OutgoingMail, Ticket, VendorOrder
from .services import public_comments, visible_attachments, visible_tickets  # noqa: F401


@require(Capability.DESK_VIEW)
def queue(request):
    """工单队列 with saved views (我的待办 …) and filters, all in the query string; see desk.queue."""
    from . import queue as q

    filters = q.Filters.from_query(request.GET)
    now = timezone.now()
    regions = q.user_regions(request.user)
    error = None
    try:
        qs = q.tickets(request.user, filters, now, regions)
    except ValidationError as exc:
        error = "；".join(exc.messages)
        qs = Ticket.objects.none()
    if filters.region and not any(r.code == filters.region for r in regions):
        error = f"区划“{filters.region[:20]}”不存在或不在您的授权区划内"
    page = q.CappedPaginator(qs, 50).get_page(request.GET.get("page"))
    clocks = q.Clocks(q.calendars(), now).load(page.object_list)
    notices = request.user.notifications.filter(read=False).select_related("ticket")[:10]
    context = {
        "page": page,
        "rows": q.rows_html([(t, clocks.of(t)) for t in page.object_list]),
        "filters": filters,
        "error": error,
        "views": [
            (code, label, q.VIEW_HELP[code], filters.query_string(view=code))
            for code, label in q.VIEWS.items()
        ],
        "statuses": flow.STATUS_LABELS,
        "tiers": Ticket.Tier.choices,
        "severities": q.sla.SEVERITIES,
        "types": q.sla.TYPES,
        "regions": regions,
        "assignees": q.assignee_choices(regions),
        "notices": notices,
        "can_work": request.user.can(Capability.DESK_WORK),
    }
    return render(request, "desk/queue.html", context, status=400 if error else 200)


def usable_call(user, pk) -> HotlineCall | None:
    """The call a ticket may be opened from: only for those who work calls, in the call's region."""
    if not pk or not user.can(Capability.DESK_WORK):
        return None
    try:
        return HotlineCall.objects.visible_to(user).select_related("ticket").filter(pk=int(pk)).first()
    except (TypeError, ValueError, OverflowError):
        return None


CALL_REFUSED = "不能由该来电登记工单：来电不存在、不在您的授权区划内，或您不是热线坐席"


@require(Capability.DESK_CREATE)
def new(request):
    posted = request.method == "POST"
    wanted = (request.POST if posted else request.GET).get("call")
    call = usable_call(request.user, wanted)
    initial = {}
    if call is not None and call.ticket_id is None:
        initial = {
            "region": call.region,
            "channel": Ticket.Channel.HOTLINE,
            "requester_name": call.caller_name,
            "requester_phone": call.caller_number,
            "requester_org": call.caller_org,
            "title": call.summary[:120],
            "description": call.summary,
        }
    form = TicketForm(request.POST or None, user=request.user, initial=initial)
    if posted and wanted and call is None:
        # A posted call the user may not use is refused outright: no ticket, no link.
        form.is_valid()
        form.add_error(None, CALL_REFUSED)
        return render(request, "desk/new.html", {"form": form, "call": None}, status=403)
    if posted and form.is_valid():
        data = dict(form.cleaned_data)
        region = data.pop("region")
        try:
            with transaction.atomic():
                if call is not None:
                    call = HotlineCall.objects.select_for_update().get(pk=call.pk)
                    if call.ticket_id is not None:
                        linked = Ticket.objects.get(pk=call.ticket_id).number
                        raise ValidationError(f"该来电已关联工单 {linked}，不能重复关联")
                ticket = services.create_ticket(request.user, region=region, **data)
                if call is not None:
                    call.ticket = ticket
                    call.save(update_fields=["ticket"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            linked = (
                f"，已关联 {timezone.localtime(call.at):%m-%d %H:%M} 来电 {call.caller_number}"
                if call
                else ""
            )
            messages.success(request, f"已登记工单 {ticket.number}{linked}")
            return redirect("desk:detail", number=ticket.number)
    return render(request, "desk/new.html", {"form": form, "call": call})


@require(Capability.DESK_WORK)
def calls(request):
    """热线登记: the call log, the callbacks due, and this month's answer and callback rates."""
    qs = HotlineCall.objects.visible_to(request.user).select_related(
        "region", "agent", "ticket", "callback_by"
    )
    # Most calls are answered, and are logged as they come in.
    initial = {"answered": True, "at": timezone.localtime().replace(second=0, microsecond=0)}
    form = CallForm(request.POST or None, user=request.user, initial=initial)
    if request.GET.get("call"):
        qs = qs.filter(pk=_pk(request.GET["call"]) or 0)  # the call a ticket page links to
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        number = data.pop("ticket_number", "").strip()
        try:
            if number:
                data["ticket"] = visible_tickets(request.user).filter(number=number).first()
                if data["ticket"] is None:
                    raise ValidationError(f"工单号“{number}”不存在或不在您的授权区划内")
            call = services.log_call(request.user, **data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                "已登记来电"
                + (
                    "" if call.answered else f"，回拨时限 {timezone.localtime(call.callback_due):%m-%d %H:%M}"
                ),
            )
            if request.POST.get("then") == "ticket" and call.ticket_id is None:
                # 登记并开工单: the new-ticket form, filled from the call; saving it links the two.
                return redirect(f"{reverse('desk:new')}?call={call.pk}")
            return redirect("desk:calls")
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return render(
        request,
        "desk/calls.html",
        {
            "form": form,
            "page": Paginator(qs, 50).get_page(request.GET.get("page")),
            "pending": qs.filter(answered=False, callback_at__isnull=True).order_by("callback_due"),
            "kpi": kpi.hotline_kpis(qs.filter(at__gte=month_start), timezone.now()),
            "now": timezone.now(),
        },
    )


@require(Capability.DESK_WORK)
@require_POST
def call_back(request, pk: int):
    call = get_object_or_404(HotlineCall.objects.visible_to(request.user), pk=pk)
    try:
        services.call_back(request.user, call, request.POST.get("summary", ""))
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        messages.success(request, f"已回拨 {call.caller_number}")
    return redirect("desk:calls")


def _ancestor_paths(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["".join(f"{p}/" for p in parts[: i + 1]) for i in range(len(parts))]


def _detail_context(request, ticket):
    can_work = request.user.can(Capability.DESK_WORK)
    states = services.clock_states(ticket)
    clocks = [
        {"label": label, "state": states[clock]}
        for clock, label in (("first_response", "首次响应"), ("update", "进展更新"), ("resolution", "解决"))
        if states[clock].target is not None
    ]
    return {
        "ticket": ticket,
        "clocks": clocks,
        "transitions": [
            (s, flow.STATUS_LABELS[s]) for s in flow.STATUS_LABELS if s in flow.TRANSITIONS[ticket.status]
        ],
        "comments": public_comments(request.user, ticket).select_related("author"),
        "changes": ticket.changes.select_related("by"),
        # Only workers whose regions cover the ticket's (a grant of the region or of one above it).
        "workers": User.objects.filter(
            role_grants__role__in=["agent", "engineer", "pm"],
            is_active=True,
            region_grants__region__path__in=_ancestor_paths(ticket.region.path),
        ).distinct(),
        "can_work": can_work,
        "is_requester": ticket.requester_id == request.user.pk,
        "survey": getattr(ticket, "survey", None),
        "statuses": flow.STATUS_LABELS,
        # Vendor orders and their follow-ups are the O&M team's working notes, not replies to the requester.
        "vendor_orders": ticket.vendor_orders.prefetch_related("follow_ups__by") if can_work else [],
        "vendor_statuses": VendorOrder.Status.choices,
        "attachments": visible_attachments(request.user, ticket),
        "timeline": timeline.events(ticket, request.user),
        # Calls are the hotline's records: shown (and linked back) to those who work calls.
        "calls": ticket.calls.all() if can_work else [],
        "can_reply": not can_work and ticket.requester_id == request.user.pk,
    }


def _pk(value) -> int | None:
    """A posted id or number, or None when it is not one (a 404 or a Chinese error, never a 500)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**63 else None


@require(Capability.DESK_CREATE)
def detail(request, number: str):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    return render(request, "desk/detail.html", _detail_context(request, ticket))


@require(Capability.DESK_WORK)
@require_POST
def act(request, number: str):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    action = request.POST.get("action")
    try:
        if action == "status":
            services.change_status(
                request.user, ticket, request.POST.get("status", ""), request.POST.get("note", "")
            )
        elif action == "comment":
            # One step: the note and all its files are saved, or (one file refused) nothing is.
            services.comment(
                request.user,
                ticket,
                request.POST.get("body", ""),
                request.POST.get("internal") == "1",
                files=request.FILES.getlist("files"),
            )
        elif action == "vendor":
            try:
                due = date.fromisoformat(request.POST.get("due", ""))
            except ValueError as exc:
                raise ValidationError("要求答复日期格式应为 YYYY-MM-DD") from exc
            services.to_vendor(
                request.user,
                ticket,
                reference=request.POST.get("reference", ""),
                due=due,
                vendor=request.POST.get("vendor") or "省级开发团队",
                note=request.POST.get("note", ""),
            )
        elif action == "follow_up":
            order = get_object_or_404(ticket.vendor_orders, pk=_pk(request.POST.get("order")))
            services.follow_up(
                request.user, order, request.POST.get("note", ""), request.POST.get("status", "")
            )
        elif action == "assign":
            wanted = request.POST.get("assignee") or None
            assignee = User.objects.filter(pk=_pk(wanted)).first() if wanted else None
            if wanted and assignee is None:
                raise ValidationError("所选处理人不存在")
            before = (ticket.assignee, ticket.tier)
            ticket = services.assign(request.user, ticket, assignee, request.POST.get("tier") or None)
            if (ticket.assignee, ticket.tier) == before:
                messages.info(request, "处理人与处理层级未变化")
            else:
                messages.success(
                    request,
                    f"已分派给 {ticket.assignee or '（未分派）'}（{ticket.get_tier_display()}），已记入时间线",
                )
        else:
            raise ValidationError("未知的操作")
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    return redirect("desk:detail", number=number)


@require(Capability.DESK_CREATE)
@require_POST
def reply(request, number: str):
    """提出人回复 with files: answering 等待用户 puts the ticket back to 处理中 and the clocks run again."""
    ticket = get_object_or_404(visible_tickets(request.user).filter(requester=request.user), number=number)
    waiting = ticket.status == flow.WAITING
    try:
        services.comment(
            request.user, ticket, request.POST.get("body", ""), files=request.FILES.getlist("files")
        )
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        ticket.refresh_from_db(fields=["status"])
        resumed = "，工单已恢复处理，服务时限恢复计时" if waiting and ticket.status != flow.WAITING else ""
        messages.success(request, f"已回复{resumed}")
    return redirect(f"{reverse('desk:detail', args=[number])}#reply")


@require(Capability.DESK_CREATE)
def mine(request):
    """我的工单 (portal): the tickets the user raised, with those waiting for their confirmation first."""
    qs = Ticket.objects.visible_to(request.user).filter(requester=request.user).select_related("region")
    waiting = qs.filter(status__in=[flow.CONFIRMING, flow.RESOLVED], survey__isnull=True)
    return render(
        request,
        "desk/mine.html",
        {
            "page": Paginator(qs, 50).get_page(request.GET.get("page")),
            "waiting": waiting,
            # 等待用户: the O&M team asked them something; the clocks stand still until they answer.
            "asked": qs.filter(status=flow.WAITING),
        },
    )


@require(Capability.DESK_CREATE)
@require_POST
def confirm(request, number: str):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    try:
        if request.POST.get("action") == "rate":
            services.rate(
                request.user, ticket, _pk(request.POST.get("score")) or 0, request.POST.get("comment", "")
            )
            messages.success(request, "感谢您的评价")
        else:
            services.requester_confirm(
                request.user, ticket, request.POST.get("accepted") == "1", request.POST.get("note", "")
            )
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    return redirect("desk:detail", number=number)


@require(Capability.DESK_VIEW)
def dashboard(request):
    """考核看板: the month's contract KPIs against their thresholds, with charts (ECharts, data as JSON)."""
    from .kpi import monthly_kpis

    try:
        kpis = monthly_kpis(request.user, request.GET.get("month") or None)
    except ValueError as exc:
        messages.error(request, str(exc))
        kpis = monthly_kpis(request.user, None)
    chart = {
        "systems": [[name, count] for name, count in kpis["top_systems"]],
        "types": [[name, count] for name, count in kpis["top_types"]],
        "breaches": kpis["breaches"],
        "satisfaction": [
            [r["region"], round(r["rate"] * 100, 1), r["target"] * 100]
            for r in kpis["satisfaction_by_region"]
        ],
    }
    return render(
        request,
        "desk/dashboard.html",
        {"k": kpis, "chart": chart, "can_decide": request.user.can(Capability.DESK_DECIDE)},
    )


@require(Capability.DESK_CREATE)
def attachment(request, number: str, pk: int):
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    item = get_object_or_404(visible_attachments(request.user, ticket), pk=pk)
    return FileResponse(item.file.open("rb"), as_attachment=True, filename=item.name)


@require(Capability.DESK_VIEW)
def report(request, fmt: str = "docx"):
    """运维月报 (Word, or PDF at report.pdf) for the month, over the user's regions; the download is an audited
    export."""
    from django.http import HttpResponse

    from caiwei.audit.log import record_export

    from .report import content_type, monthly_report

    try:
        name, data = monthly_report(request.user, request.GET.get("month") or None, fmt=fmt)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("desk:dashboard")
    record_export("desk.monthly_report", 1, {"month": request.GET.get("month", ""), "format": fmt})
    response = HttpResponse(data, content_type=content_type(fmt))
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response


@require(Capability.DESK_WORK)
def mail(request):
    """邮件受理: quarantined messages with their reasons, and mail not yet sent, in the user's regions."""
    quarantined = (
        MailIntake.objects.visible_to(request.user)
        .filter(status=MailIntake.Status.QUARANTINED)
        .select_related("region")
    )
    unsent = (
        OutgoingMail.objects.visible_to(request.user)
        .exclude(status=OutgoingMail.Status.SENT)
        .select_related("ticket")
        .order_by("status", "next_attempt_at")
    )
    return render(
        request,
        "desk/mail.html",
        {
            "page": Paginator(quarantined, 50).get_page(request.GET.get("page")),
            "unsent": unsent[:100],
            "recent": MailIntake.objects.visible_to(request.user)
            .filter(status=MailIntake.Status.DONE)
            .select_related("ticket")[:20],
        },
    )
