"""Contract KPIs 考核指标 for a month: what the seed contracts pay for, computed from the desk's records."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from . import flow, services
from .models import Complaint, HotlineCall, Survey, Ticket

FIRST_YEAR, LAST_YEAR = 2000, 2100  # the months a report can be asked for

SATISFACTION_TARGET, COUNTY_SATISFACTION_TARGET, ANSWER_TARGET = 0.95, 0.90, 0.95


def month_bounds(month: str | None) -> tuple[datetime, datetime, str]:
    """“2026-11” → [start, end) in Beijing time; None → the current month."""
    if month:
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError as exc:
            raise ValueError(f"月份“{month}”格式应为 YYYY-MM") from exc
        if not FIRST_YEAR <= first.year <= LAST_YEAR:
            raise ValueError(f"月份“{month}”应在 {FIRST_YEAR}-01 至 {LAST_YEAR}-12 之间")
    else:
        first = timezone.localdate().replace(day=1)
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(first, time.min, tzinfo=tz),
        datetime.combine(nxt, time.min, tzinfo=tz),
        first.strftime("%Y-%m"),
    )


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def monthly_kpis(user, month: str | None = None) -> dict:
    start, end, label = month_bounds(month)
    tickets = list(
        Ticket.objects.visible_to(user)
        .filter(opened_at__gte=start, opened_at__lt=end)
        .select_related("region", "policy")
        .prefetch_related("changes", "policy__rules")
    )
    specs = services.calendars()
    now = timezone.now()
    responded_in_time = with_response_target = 0
    breaches: Counter = Counter()
    consultations = closed_same_day = 0
    for ticket in tickets:
        states = services.clock_states(ticket, now=now, specs=specs)
        first = states["first_response"]
        if first.target is not None:
            with_response_target += 1
            responded_in_time += first.met_at is not None and not first.breached
        for clock in ("first_response", "resolution"):
            if states[clock].target is not None and states[clock].breached:
                breaches[(ticket.severity, clock)] += 1
        if ticket.ticket_type == "咨询":
            consultations += 1
            resolved = ticket.resolved_at
            closed_same_day += resolved is not None and resolved <= services.end_of_business_day(
                specs["workday"], ticket.opened_at
            )
    calls = HotlineCall.objects.visible_to(user).filter(at__gte=start, at__lt=end)
    hotline = services.hotline_kpis(calls)
    surveys = Survey.objects.filter(ticket__in=[t.pk for t in tickets])
    by_region = services.satisfaction_by_region(surveys)
    for row in by_region:
        row["target"] = SATISFACTION_TARGET if row["code"].endswith("00000") else COUNTY_SATISFACTION_TARGET
        row["ok"] = row["rate"] >= row["target"]
    satisfied = sum(r["satisfied"] for r in by_region)
    rated = sum(r["count"] for r in by_region)
    complaints = services.complaints_per_region(Complaint.objects.visible_to(user), start.year)
    per_agent: dict[str, list[int]] = {}
    for survey in surveys.select_related("ticket__assignee"):
        name = str(survey.ticket.assignee) if survey.ticket.assignee else "未分派"
        per_agent.setdefault(name, [0, 0])
        per_agent[name][0] += 1
        per_agent[name][1] += survey.satisfied
    return {
        "month": label,
        "tickets": len(tickets),
        "open": sum(t.status in flow.OPEN_STATUSES for t in tickets),
        "hotline": hotline,
        "answer_target": ANSWER_TARGET,
        "first_response_rate": ratio(responded_in_time, with_response_target),
        "consultations": consultations,
        "same_day_closure_rate": ratio(closed_same_day, consultations),
        "breaches": [
            {
                "severity": s,
                "first_response": breaches[(s, "first_response")],
                "resolution": breaches[(s, "resolution")],
            }
            for s in ("重大", "紧急", "一般")
        ],
        "satisfaction": ratio(satisfied, rated),
        "satisfaction_target": SATISFACTION_TARGET,
        "satisfaction_by_region": by_region,
        "complaints": complaints,
        "satisfaction_by_agent": [
            {"agent": a, "count": c, "satisfied": ok, "rate": ok / c}
            for a, (c, ok) in sorted(per_agent.items())
        ],
        "top_systems": Counter(t.system for t in tickets).most_common(8),
        "top_types": Counter(t.ticket_type for t in tickets).most_common(10),
    }
