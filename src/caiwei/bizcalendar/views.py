from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from . import notice as notices
from . import services
from .models import BusinessCalendar, HolidayNotice, KeyPeriod


@require(Capability.VIEW_CALENDAR)
def index(request):
    calendars = BusinessCalendar.objects.prefetch_related("days")
    selected = calendars.filter(code=request.GET.get("calendar") or "workday").first() or calendars.first()
    context = {
        "calendars": calendars,
        "selected": selected,
        "key_periods": KeyPeriod.objects.all(),
        "upcoming": services.upcoming_days(selected) if selected else [],
        "can_manage": request.user.can(Capability.MANAGE_CALENDAR),
        "missing_years": (missing := notices.missing_years()),
        "missing_message": notices.missing_message(missing, html=True) if missing else "",
        "notices": HolidayNotice.objects.all()[:5],
    }
    return render(request, "bizcalendar/index.html", context)


@require(Capability.VIEW_CALENDAR)
def calculate(request):
    """htmx: due time after N business minutes, and business minutes between two instants."""
    params = request.GET
    result, error = None, None
    try:
        if params.get("end"):
            result = services.between(params.get("calendar", ""), params.get("start", ""), params["end"])
        else:
            try:
                minutes = int(params.get("minutes", 0))
            except ValueError:
                raise ValidationError({"minutes": f"分钟数“{params.get('minutes')}”应为整数"}) from None
            result = services.due(params.get("calendar", ""), params.get("start", ""), minutes)
    except (ValidationError, ValueError) as exc:
        error = "；".join(getattr(exc, "messages", [str(exc)]))
    return render(request, "bizcalendar/_result.html", {"result": result, "error": error})


@require(Capability.MANAGE_CALENDAR)
@require_http_methods(["GET", "POST"])
def import_notice(request):
    """导入放假安排通知: paste the notice in the line format, preview the days, then confirm."""
    missing = notices.missing_years()
    data = request.POST if request.method == "POST" else {}
    form = {
        "year": data.get("year") or (missing[-1] if missing else timezone.localdate().year + 1),
        "title": data.get("title", ""),
        "text": data.get("text", ""),
    }
    context = {"form": form, "errors": [], "preview": None, "format_help": notices.FORMAT_HELP}
    if request.method == "POST":
        try:
            if data.get("action") == "confirm":
                saved = notices.import_notice(form["year"], form["text"], form["title"])
                messages.success(
                    request,
                    f"已导入 {saved.year} 年放假安排：{saved.days.count()} 个日期，业务日历与工单时限即时生效",
                )
                return redirect("bizcalendar:index")
            context["preview"] = notices.parse_notice(form["year"], form["text"])
        except ValidationError as exc:
            context["errors"] = exc.messages
    return render(request, "bizcalendar/notice.html", context)
