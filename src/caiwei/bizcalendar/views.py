from django.core.exceptions import ValidationError
from django.shortcuts import render

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from . import services
from .models import BusinessCalendar, KeyPeriod


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
