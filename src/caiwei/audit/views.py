import csv

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.jobs import runner
from caiwei.jobs.models import Job

from .chain import SealFileError
from .export import EXPORT_COLUMNS, export_rows, search_events
from .log import record_export
from .models import AuditAction
from .present import present
from .seals import SealError, export_name, export_seals, latest, seal_quietly, seal_time

FILTER_NAMES = ("since", "until", "action", "actor", "ip", "object_type", "source", "q")


def _filters(request) -> dict:
    return {
        name: request.GET.get(name, "").strip() for name in FILTER_NAMES if request.GET.get(name, "").strip()
    }


@require(Capability.READ_AUDIT)
def events(request):
    filters = _filters(request)
    try:
        qs = search_events(filters)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        qs, filters = search_events({}), {}
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    last_verify = Job.objects.filter(kind="audit.verify").first()
    seal, seal_error = None, ""
    try:
        seal = latest()
    except (SealError, SealFileError) as exc:
        seal_error = str(exc)
    context = {
        "page": page,
        "rows": [present(e) for e in page],
        "filters": filters,
        "actions": AuditAction.choices,
        "last_verify": last_verify,
        "latest_seal": seal,
        "latest_seal_at": seal_time(seal) if seal else None,
        "seal_error": seal_error,
    }
    return render(request, "audit/events.html", context)


class _Echo:
    def write(self, value):
        return value


@require(Capability.READ_AUDIT)
def export(request):
    filters = _filters(request)
    try:
        search_events(filters)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        return redirect("audit:events")
    count = search_events(filters).count()
    record_export("audit.auditevent", count, filters)
    seal_quietly()
    writer = csv.writer(_Echo())

    def rows():
        yield "\ufeff" + writer.writerow([label for _, label in EXPORT_COLUMNS])
        for row in export_rows(filters):
            yield writer.writerow(row)

    name = f"audit-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require(Capability.READ_AUDIT)
@require_POST
def verify(request):
    job = runner.start("audit.verify", user=request.user)
    messages.info(request, "已提交审计链校验任务")
    return redirect("jobs:detail", pk=job.pk)


@require(Capability.READ_AUDIT)
def seals(request):
    """导出封存点: the seal file, for the auditor to keep away from this server; the export is audited."""
    data, count = export_seals()
    record_export("audit.seal", count)
    response = HttpResponse(data, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_name()}"'
    return response
