"""数据运维 home: the four kinds of work (query, change, backup and restore, DR drills), each shown to whom may do it,
with what is waiting for the user."""

from django.shortcuts import render
from django.utils import timezone

from caiwei.accounts.roles import Capability


def index(request):
    from . import services_backups, services_console
    from .models_backups import DrillRecord

    user = request.user
    year = timezone.localdate().year
    context = {
        "can_query": user.can(Capability.DATA_QUERY),
        "can_grant": user.can(Capability.DATA_GRANT),
        "can_change": user.can(Capability.DATA_CHANGE),
        "can_approve": user.can(Capability.DATA_APPROVE),
        "can_backup": user.can(Capability.DATA_BACKUP),
        "backups": services_backups.visible_backups(user)[:5],
        "drills_this_year": services_backups.visible_drills(user)
        .filter(started_at__year=year)
        .filter(status=DrillRecord.Status.PASSED)
        .count(),
        "year": year,
        "exports_pending": services_console.visible_exports(user).filter(status="pending").count(),
    }
    try:
        from . import changes_services
        from .models_changes import ChangeRequest

        changes = changes_services.visible_changes(user)
        context["changes"] = changes[:8]
        context["changes_pending"] = changes.filter(status=ChangeRequest.Status.PENDING).count()
    except ImportError:  # the data change part not merged yet
        context["changes"] = None
    return render(request, "dataops/index.html", context)
