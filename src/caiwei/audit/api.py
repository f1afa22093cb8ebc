import csv
import io
from datetime import date, datetime

from django.http import HttpResponse
from ninja import Query, Router, Schema

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.jobs import runner
from caiwei.jobs.api import JobOut, job_out

from .export import EXPORT_COLUMNS, export_rows, search_events
from .log import record_export
from .seals import export_name, export_seals, seal_quietly

router = Router(tags=["审计日志"])

MAX_OFFSET = 2_000_000_000  # far beyond any page a person reads, and well within bigint


class EventFilter(Schema):
    since: date | None = None
    until: date | None = None
    action: str | None = None
    actor: str | None = None
    ip: str | None = None
    object_type: str | None = None
    source: str | None = None
    q: str | None = None


class EventOut(Schema):
    seq: int
    at: datetime
    action: str
    actor: str
    ip: str | None
    source: str
    request_id: str
    object_type: str
    object_id: str
    object_repr: str
    before: dict | list | None
    after: dict | list | None
    detail: dict
    hash: str


class EventPage(Schema):
    count: int
    items: list[EventOut]


@router.get("/events", response=EventPage, summary="检索审计日志（安全审计员）")
def events(
    request,
    filters: Query[EventFilter],
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = 100,
):
    ensure(request.user, Capability.READ_AUDIT, "api:audit.events")
    qs = search_events(filters.dict(exclude_none=True))
    limit = max(1, min(limit, 1000))
    return {"count": qs.count(), "items": list(qs[offset : offset + limit])}


@router.get("/export", summary="导出审计日志 CSV（安全审计员）")
def export(request, filters: Query[EventFilter]):
    ensure(request.user, Capability.READ_AUDIT, "api:audit.export")
    params = filters.dict(exclude_none=True)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in EXPORT_COLUMNS])
    count = 0
    for row in export_rows(params):
        writer.writerow(row)
        count += 1
    record_export("audit.auditevent", count, {k: str(v) for k, v in params.items()})
    seal_quietly()
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


@router.post("/verify", response=JobOut, summary="后台校验审计哈希链（安全审计员）")
def verify(request):
    ensure(request.user, Capability.READ_AUDIT, "api:audit.verify")
    return job_out(runner.start("audit.verify", user=request.user))


@router.get("/seals", summary="导出审计链封存点 JSON Lines（安全审计员）")
def seals(request):
    ensure(request.user, Capability.READ_AUDIT, "api:audit.seals")
    data, count = export_seals()
    record_export("audit.seal", count)
    response = HttpResponse(data, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_name()}"'
    return response
