"""Monthly contract KPIs from records whose outcome is known by construction."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from caiwei.desk import flow, services
from caiwei.desk.kpi import monthly_kpis
from caiwei.desk.models import Ticket, TicketChange
from caiwei.web.templatetags.caiwei import percent

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db
FIELDS = {
    "system": "国库集中支付",
    "severity": "一般",
    "title": "问题",
    "description": "描述",
    "requester_name": "经办人（演示）",
}


def ticket_at(user, region, opened, kind="故障", changes=()):
    ticket = services.create_ticket(user, region=region, ticket_type=kind, **FIELDS)
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=opened)
    status = flow.NEW
    for minutes, new in changes:
        TicketChange.objects.create(
            ticket=ticket, at=opened + timedelta(minutes=minutes), old_status=status, new_status=new
        )
        status = new
    resolved = next((opened + timedelta(minutes=m) for m, s in changes if s == flow.RESOLVED), None)
    Ticket.objects.filter(pk=ticket.pk).update(status=status, resolved_at=resolved)
    return ticket


def test_monthly_kpis(users, regions):
    agent, city = users["agent"], regions["152500000"]
    # xilingol: 2 business hours to respond. Tuesday 2026-11-10 09:00.
    day = datetime(2026, 11, 10, 9, tzinfo=SH)
    ticket_at(agent, city, day, changes=[(30, flow.RESPONDED)])  # in time
    ticket_at(agent, city, day, changes=[(60 * 5 + 30, flow.RESPONDED)])  # 14:30 → 3.5 business hours: late
    ticket_at(agent, city, day, kind="咨询", changes=[(10, flow.RESPONDED), (120, flow.RESOLVED)])  # same day
    ticket_at(
        agent, city, day, kind="咨询", changes=[(10, flow.RESPONDED), (60 * 25, flow.RESOLVED)]
    )  # next day
    for i in range(9):
        services.log_call(
            agent, region=city, at=day + timedelta(minutes=i), answered=True, caller_number=f"{i}"
        )
    services.log_call(agent, region=city, at=day, answered=False, caller_number="x")
    k = monthly_kpis(agent, "2026-11")
    assert k["tickets"] == 4 and k["hotline"]["answer_rate"] == 0.9
    assert k["first_response_rate"] == 0.75
    assert k["same_day_closure_rate"] == 0.5
    breaches = {b["severity"]: b for b in k["breaches"]}
    assert breaches["一般"]["first_response"] == 1
    assert monthly_kpis(agent, "2026-10")["tickets"] == 0
    with pytest.raises(ValueError, match="YYYY-MM"):
        monthly_kpis(agent, "2026/11")


def test_dashboard_page(users, regions, client_for):
    html = client_for(users["pm"]).get("/desk/dashboard/?month=2026-11").content.decode()
    assert "考核看板" in html and 'id="kpi-data"' in html
    assert client_for(users["unit"]).get("/desk/dashboard/").status_code == 403


def test_percent_filter():
    assert (percent(None), percent(0.9), percent(0.9655), percent(1)) == ("-", "90%", "96.5%", "100%")


# --- 进行中: a rate counts only what is due ---------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from caiwei.desk.kpi import NOTHING_DUE  # noqa: E402
from caiwei.desk.models import HotlineCall  # noqa: E402

DAY = datetime(2026, 11, 10, 9, tzinfo=SH)  # a Tuesday; business hours 08:30–12:00, 14:30–18:00
RATES = ("first_response_rate", "resolution_rate", "same_day_closure_rate")


def test_mid_month_nothing_due_is_in_progress_not_zero(users, regions):
    agent, city = users["agent"], regions["152500000"]
    ticket_at(agent, city, DAY)  # not responded: due 11:00
    ticket_at(agent, city, DAY, kind="咨询")  # not resolved: due 18:00
    call = services.log_call(agent, region=city, at=DAY, answered=False, caller_number="1")
    k = monthly_kpis(agent, "2026-11", now=DAY + timedelta(minutes=30))
    assert all(k[name] is None for name in RATES) and k["hotline"]["callback_rate"] is None
    assert k["first_response_pending"] == 2 and k["same_day_closure_pending"] == 1
    assert k["hotline"]["callback_pending"] == 1
    rows = {r["key"]: r for r in k["rates"]}
    for key in ("first_response", "resolution", "same_day_closure", "callback"):
        assert rows[key]["verdict"] == NOTHING_DUE and rows[key]["rate"] is None and rows[key]["pending"] > 0
    # The next morning every deadline of that Tuesday has passed: now they are breached, 0 % and 未达标.
    late = monthly_kpis(agent, "2026-11", now=DAY + timedelta(days=1))
    assert late["first_response_rate"] == 0 and late["same_day_closure_rate"] == 0
    assert late["hotline"]["callback_rate"] == 0 and late["first_response_pending"] == 0
    assert {r["key"]: r["verdict"] for r in late["rates"]}["first_response"] == "未达标"
    # Completed before the deadline counts at once, as met.
    HotlineCall.objects.filter(pk=call.pk).update(callback_at=DAY + timedelta(minutes=20))
    ticket_at(agent, city, DAY, kind="咨询", changes=[(5, flow.RESPONDED), (15, flow.RESOLVED)])
    early = monthly_kpis(agent, "2026-11", now=DAY + timedelta(minutes=30))
    assert early["first_response_rate"] == 1 and early["first_response_pending"] == 2
    assert early["same_day_closure_rate"] == 1 and early["same_day_closure_pending"] == 1
    assert early["hotline"]["callback_rate"] == 1 and early["hotline"]["callback_pending"] == 0


def reference(items, calls, now):
    """The rule written out: per deadline, counted when completed (in time or not) or when the deadline passed."""

    def tally(pairs):
        met = missed = pending = 0
        for done, due in pairs:
            if done is not None and done <= now:
                met, missed = met + (done <= due), missed + (done > due)
            elif now > due:
                missed += 1
            else:
                pending += 1
        return (met / (met + missed) if met + missed else None), pending

    eod = DAY.replace(hour=18, minute=0)
    first = [(responded, opened + timedelta(minutes=120)) for opened, _, responded, _ in items]
    resolution = [
        (resolved, eod if kind == "咨询" else opened + timedelta(days=3))
        for opened, kind, _, resolved in items
    ]
    same_day = [(resolved, eod) for _, kind, _, resolved in items if kind == "咨询"]
    return {
        "first_response": tally(first),
        "resolution": tally(resolution),
        "same_day_closure": tally(same_day),
        "callback": tally([(back, eod) for back in calls]),
    }


ITEM = st.tuples(
    st.integers(0, 60),  # opened, minutes after 09:00 (so the 2-hour response is due by 12:00)
    st.sampled_from(["故障", "咨询"]),
    st.one_of(st.none(), st.integers(0, 170)),  # responded, minutes after opening
    st.one_of(st.none(), st.integers(0, 60)),  # resolved, minutes after responding
)
NOW = st.one_of(
    st.integers(0, 180).map(lambda m: DAY + timedelta(minutes=m)),  # that morning
    st.sampled_from([DAY.replace(hour=20), DAY + timedelta(days=4)]),  # that evening; the Saturday after
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(ITEM, min_size=0, max_size=4),
    calls=st.lists(st.one_of(st.none(), st.integers(0, 180)), max_size=3),
    now=NOW,
)
def test_rates_follow_the_rule(users, regions, items, calls, now):
    agent, city = users["agent"], regions["152500000"]
    Ticket.objects.all().delete()
    HotlineCall.objects.all().delete()
    stored = []
    for offset, kind, responded, resolved in items:
        opened = DAY + timedelta(minutes=offset)
        changes, resp_at, res_at = [], None, None
        if responded is not None and opened + timedelta(minutes=responded) <= now:
            changes.append((responded, flow.RESPONDED))
            resp_at = opened + timedelta(minutes=responded)
            if resolved is not None and resp_at + timedelta(minutes=resolved) <= now:
                changes.append((responded + resolved, flow.RESOLVED))
                res_at = resp_at + timedelta(minutes=resolved)
        if opened <= now:
            ticket_at(agent, city, opened, kind=kind, changes=changes)
            stored.append((opened, kind, resp_at, res_at))
    backs = []
    for i, back in enumerate(calls):
        call = services.log_call(agent, region=city, at=DAY, answered=False, caller_number=str(i))
        at = (
            DAY + timedelta(minutes=back)
            if back is not None and DAY + timedelta(minutes=back) <= now
            else None
        )
        HotlineCall.objects.filter(pk=call.pk).update(callback_at=at)
        backs.append(at)
    k = monthly_kpis(agent, "2026-11", now=now)
    expected = reference(stored, backs, now)
    rows = {r["key"]: r for r in k["rates"]}
    for key, (rate, pending) in expected.items():
        assert (rows[key]["rate"], rows[key]["pending"]) == (
            pytest.approx(rate) if rate is not None else None,
            pending,
        ), key
        assert rows[key]["verdict"] == (NOTHING_DUE if rate is None else ("达标" if rate == 1 else "未达标"))


def test_dashboard_and_api_show_in_progress(users, regions, client_for):
    """A ticket just opened: its first response is 进行中 on the page and in the API, not 0 % or 未达标."""
    services.create_ticket(users["agent"], region=regions["152500000"], ticket_type="故障", **FIELDS)
    client = client_for(users["pm"])
    html = client.get("/desk/dashboard/").content.decode()
    assert re.search(r'data-kpi="first_response">\s*—（无到期项）', html)
    assert 'data-pending="first_response">进行中 1<' in html and "未达标" not in html
    assert 'href="/desk/report.pdf?month=' in html and "/desk/manage/policies/" in html
    k = client.get("/api/desk/kpis").json()
    rows = {r["key"]: r for r in k["rates"]}
    assert k["first_response_rate"] is None and k["first_response_pending"] == 1
    assert rows["first_response"]["verdict"] == NOTHING_DUE and rows["first_response"]["pending"] == 1
    assert "/desk/manage/" not in client_for(users["engineer"]).get("/desk/dashboard/").content.decode()
