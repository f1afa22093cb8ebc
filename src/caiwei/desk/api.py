from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.regions.models import Region

from . import flow, services
from .views import visible_tickets

router = Router(tags=["服务台"])


class TicketOut(Schema):
    number: str
    region: str
    system: str
    ticket_type: str
    severity: str
    status: str
    title: str
    tier: str
    assignee: str | None
    opened_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    due_first_response: datetime | None
    due_resolution: datetime | None


def ticket_out(t) -> dict:
    return {
        "number": t.number,
        "region": t.region.code,
        "system": t.system,
        "ticket_type": t.ticket_type,
        "severity": t.severity,
        "status": t.status,
        "title": t.title,
        "tier": t.tier,
        "assignee": t.assignee.username if t.assignee else None,
        "opened_at": t.opened_at,
        "responded_at": t.responded_at,
        "resolved_at": t.resolved_at,
        "due_first_response": t.due_first_response,
        "due_resolution": t.due_resolution,
    }


class TicketFilter(Schema):
    region: str | None = None
    status: str | None = None
    severity: str | None = None


@router.get("/tickets", response=list[TicketOut], summary="工单列表（按授权区划，最多 500 条）")
def list_tickets(request, filters: Query[TicketFilter], offset: int = 0, limit: int = 100):
    ensure(request.user, Capability.DESK_CREATE, "api:desk.tickets")
    qs = visible_tickets(request.user)
    if filters.region:
        qs = qs.filter(region__code=filters.region)
    if filters.status == "open":
        qs = qs.filter(status__in=flow.OPEN_STATUSES)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    limit = max(1, min(limit, 500))
    return [ticket_out(t) for t in qs[offset : offset + limit]]


class TicketIn(Schema):
    region: str
    system: str
    ticket_type: str
    severity: str = "一般"
    title: str
    description: str
    channel: str = "portal"
    module: str = ""
    requester_kind: str = "unit"
    requester_name: str
    requester_org: str = ""
    requester_phone: str = ""


@router.post("/tickets", response={201: TicketOut}, summary="登记工单")
def create_ticket(request, data: TicketIn):
    fields = data.dict()
    region = get_object_or_404(Region, code=fields.pop("region"))
    ticket = services.create_ticket(request.user, region=region, **fields)
    return Status(201, ticket_out(ticket))


@router.get("/tickets/{number}", response=TicketOut, summary="工单详情")
def get_ticket(request, number: str):
    ensure(request.user, Capability.DESK_CREATE, "api:desk.ticket")
    return ticket_out(get_object_or_404(visible_tickets(request.user), number=number))


class StatusIn(Schema):
    status: str
    note: str = ""


@router.post("/tickets/{number}/status", response=TicketOut, summary="变更工单状态")
def set_status(request, number: str, data: StatusIn):
    ensure(request.user, Capability.DESK_WORK, "api:desk.status")
    ticket = get_object_or_404(visible_tickets(request.user), number=number)
    return ticket_out(services.change_status(request.user, ticket, data.status, data.note))
