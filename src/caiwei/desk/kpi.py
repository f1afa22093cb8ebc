"""Contract KPIs 考核指标 for a month: what the seed contracts pay for, computed from the desk's records.

A timeliness rate counts only what is due: an item whose deadline has passed, or that was completed (responded,
resolved, called back) whatever the time. An item still inside its deadline is 进行中: counted apart, in neither
the numerator nor the denominator, so mid-month nothing reads 0 % or 未达标 before it could have been missed.
A rate with nothing due is None (shown “—（无到期项）”).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from . import flow, services
from .models import Complaint, HotlineCall, Survey, Ticket

FIRST_YEAR, LAST_YEAR = 2000, 2100  # the months a report can be asked for

SATISFACTION_TARGET, COUNTY_SATISFACTION_TARGET, ANSWER_TARGET = 0.95, 0.90, 0.95
DRILLS_PER_YEAR = 4  # seed 003: at least four disaster-recovery drills a year, each with a recovery report
NOTHING_DUE, NO_DATA = "—（无到期项）", "—（无数据）"
MET, MISSED, PENDING = "met", "missed", "pending"


def month_bounds(month: str | None, today: date | None = None) -> tuple[datetime, datetime, str]:
    """“2026-11” → [start, end) in Beijing time; None → the current month."""
    if month:
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError as exc:
            raise ValueError(f"月份“{month}”格式应为 YYYY-MM") from exc
        if not FIRST_YEAR <= first.year <= LAST_YEAR:
            raise ValueError(f"月份“{month}”应在 {FIRST_YEAR}-01 至 {LAST_YEAR}-12 之间")
    else:
        first = (today or timezone.localdate()).replace(day=1)
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(first, time.min, tzinfo=tz),
        datetime.combine(nxt, time.min, tzinfo=tz),
        first.strftime("%Y-%m"),
    )


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def outcome(done_at: datetime | None, due: datetime | None, now: datetime) -> str:
    """One deadline item at ``now``: completed by its deadline (met), completed late or past its deadline undone
    (missed), or still inside its deadline and undone (pending, 进行中)."""
    if done_at is not None and done_at <= now:
        return MET if due is None or done_at <= due else MISSED
    if due is not None and now > due:
        return MISSED
    return PENDING


def clock_outcome(state, now: datetime) -> str:
    """The same for an SLA clock (its due instant moves with pauses; ``breached`` is measured on running time)."""
    if state.met_at is not None and state.met_at <= now:
        return MISSED if state.breached else MET
    passed = state.due is not None and now > state.due
    return MISSED if state.breached or passed else PENDING


@dataclass
class Tally:
    met: int = 0
    missed: int = 0
    pending: int = 0

    def add(self, result: str) -> None:
        setattr(self, result, getattr(self, result) + 1)

    @property
    def due(self) -> int:
        return self.met + self.missed

    @property
    def rate(self) -> float | None:
        return ratio(self.met, self.due)


def rate_row(
    key: str, label: str, requirement: str, target: float, tally: Tally, deadline: bool = True
) -> dict:
    """One line of the KPI table, the same on the dashboard, in the API and in the report."""
    rate = tally.rate
    if rate is None:
        verdict = NOTHING_DUE if deadline else NO_DATA
    else:
        verdict = "达标" if rate >= target - 1e-9 else "未达标"
    return {
        "key": key,
        "label": label,
        "requirement": requirement,
        "target": target,
        "met": tally.met,
        "due": tally.due,
        "pending": tally.pending,
        "rate": rate,
        "verdict": verdict,
        "ok": None if rate is None else verdict == "达标",
        "deadline": deadline,
    }


def hotline_kpis(calls, now: datetime, callback: Tally | None = None) -> dict:
    """接通率 and 当日回拨率 over a queryset of calls (contract thresholds: 95 % and 100 %). A missed call counts in the
    callback rate once it was called back or its callback deadline passed; before that it is 进行中."""
    callback = callback if callback is not None else Tally()
    total = answered = 0
    for is_answered, callback_at, callback_due in calls.values_list(
        "answered", "callback_at", "callback_due"
    ):
        total += 1
        if is_answered:
            answered += 1
        else:
            callback.add(outcome(callback_at, callback_due, now))
    return {
        "calls": total,
        "answered": answered,
        "answer_rate": ratio(answered, total),
        "missed": total - answered,
        "callback_in_time": callback.met,
        "callback_due": callback.due,
        "callback_pending": callback.pending,
        "callback_rate": callback.rate,
    }


def drill_tally(user, year: int, now: datetime) -> Tally:
    """灾难恢复演练次数 as a deadline item: DRILLS_PER_YEAR drills are due by the end of ``year``. Each drill done
    (finished with its 恢复报告, on the databases the user sees) is met; the ones still owed are 进行中 until the year
    ends, then missed."""
    from caiwei.dataops.services_backups import drills_in_year

    done = min(drills_in_year(user, year), DRILLS_PER_YEAR)
    owed = DRILLS_PER_YEAR - done
    year_over = timezone.localtime(now).year > year
    return Tally(met=done, missed=owed if year_over else 0, pending=0 if year_over else owed)


def inspection_tally(user, start: datetime, now: datetime) -> Tally:
    """巡检完成率 of the month starting at ``start``: each due slot of the plans the user sees, done within its grace
    (met), past its deadline without that (missed) or still within it (进行中)."""
    from caiwei.inspections.services import month_tally

    local = timezone.localtime(start)
    return month_tally(user, local.year, local.month, now)


def monthly_kpis(user, month: str | None = None, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    start, end, label = month_bounds(month, timezone.localdate(now))
    tickets = list(
        Ticket.objects.visible_to(user)
        .filter(opened_at__gte=start, opened_at__lt=end, opened_at__lte=now)
        .select_related("region", "policy")
        .prefetch_related("changes", "policy__rules")
    )
    specs = services.calendars()
    first_response, resolution, same_day, callback = Tally(), Tally(), Tally(), Tally()
    breaches: Counter = Counter()
    consultations = 0
    for ticket in tickets:
        states = services.clock_states(ticket, now=now, specs=specs)
        for clock, tally in (("first_response", first_response), ("resolution", resolution)):
            state = states[clock]
            if state.target is None:
                continue
            tally.add(clock_outcome(state, now))
            if state.breached:
                breaches[(ticket.severity, clock)] += 1
        if ticket.ticket_type == "咨询":
            consultations += 1
            deadline = services.end_of_business_day(specs["workday"], ticket.opened_at)
            same_day.add(outcome(ticket.resolved_at, deadline, now))
    calls = HotlineCall.objects.visible_to(user).filter(at__gte=start, at__lt=end, at__lte=now)
    hotline = hotline_kpis(calls, now, callback)
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
    answered = Tally(met=hotline["answered"], missed=hotline["missed"])
    rated_tally = Tally(met=satisfied, missed=rated - satisfied)
    rates = [
        rate_row("answer", "热线接通率", "≥ 95%", ANSWER_TARGET, answered, deadline=False),
        rate_row("callback", "未接来电当日回拨率", "100%", 1.0, callback),
        rate_row("first_response", "首次响应及时率", "100%", 1.0, first_response),
        rate_row("resolution", "解决及时率", "100%", 1.0, resolution),
        rate_row("same_day_closure", "咨询当日办结率", "100%", 1.0, same_day),
        rate_row("satisfaction", "用户满意率", "≥ 95%", SATISFACTION_TARGET, rated_tally, deadline=False),
        rate_row(
            "dr_drills",
            "灾难恢复演练次数",
            f"每年 ≥ {DRILLS_PER_YEAR} 次",
            1.0,
            drill_tally(user, start.year, now),
        ),
        rate_row(
            "inspections", "巡检完成率", "按时完成 / 应巡检 100%", 1.0, inspection_tally(user, start, now)
        ),
    ]
    return {
        "month": label,
        "as_of": now,
        "tickets": len(tickets),
        "open": sum(t.status in flow.OPEN_STATUSES for t in tickets),
        "hotline": hotline,
        "answer_target": ANSWER_TARGET,
        "rates": rates,
        "first_response_rate": first_response.rate,
        "first_response_pending": first_response.pending,
        "resolution_rate": resolution.rate,
        "resolution_pending": resolution.pending,
        "consultations": consultations,
        "same_day_closure_rate": same_day.rate,
        "same_day_closure_pending": same_day.pending,
        "pending": sum(r["pending"] for r in rates),
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
