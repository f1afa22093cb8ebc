"""工单队列: saved views and filters derived from their rules, region scope, business-time countdown, query count."""

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.accounts.roles import Role
from caiwei.bizcalendar.engine import CalendarSpec, add_business_time, business_time_between, china_calendar
from caiwei.desk import flow, queue, services, sla
from caiwei.desk.models import Ticket, TicketChange
from caiwei.desk.tests.common import FIELDS

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def fresh_calendars():
    """The queue keeps calendars for a few seconds; a test's database starts from the seeded ones."""
    queue.forget_calendars()
    yield
    queue.forget_calendars()


# --- business time without walking every day ---------------------------------------------------------------------

CALENDARS = [CalendarSpec(), china_calendar(), CalendarSpec(always_open=True)]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(range(len(CALENDARS))),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=500)),
)
def test_business_time_equals_the_engine(which, start, span):
    spec = CALENDARS[which]
    a = start.replace(tzinfo=SH)
    assert sla.business_time(spec, a, a + span) == business_time_between(spec, a, a + span)
    assert sla.business_time(spec, a + span, a) == timedelta(0)


# --- countdown text over a weekend and a holiday -----------------------------------------------------------------


def _ticket(policy, opened, **fields) -> Ticket:
    values = {**FIELDS, "status": flow.IN_PROGRESS, "opened_at": opened} | fields
    return Ticket(policy=policy, number="GD000000000001", **values)


@pytest.mark.django_db
def test_countdown_counts_business_time_across_a_weekend():
    policy = services.default_policy()
    specs = services.calendars()
    workday = specs["workday"]
    friday = datetime(2026, 11, 27, 17, 0, tzinfo=SH)
    assert friday.weekday() == 4
    due = add_business_time(workday, friday, timedelta(hours=2))
    assert due == datetime(2026, 11, 30, 9, 30, tzinfo=SH)  # Monday: one hour on Friday, one on Monday
    ticket = _ticket(
        policy, friday - timedelta(days=1), responded_at=friday - timedelta(days=1), due_resolution=due
    )
    clocks = queue.Clocks(specs, friday).load([ticket])
    shown = clocks.of(ticket)
    assert (shown.clock, shown.text, shown.remaining_minutes) == ("解决", "剩余 2小时0分", 120)
    # Over the weekend nothing runs: Saturday noon still shows one hour (Friday 17:00–18:00 was used).
    saturday = queue.Clocks(specs, friday + timedelta(hours=19)).load([ticket]).of(ticket)
    assert saturday.text == "剩余 1小时0分"
    late = queue.Clocks(specs, due + timedelta(minutes=65)).load([ticket]).of(ticket)
    assert late.text == "超时 1小时5分" and late.remaining_minutes == -65


@pytest.mark.django_db
def test_countdown_skips_a_statutory_holiday():
    specs = services.calendars()
    workday = specs["workday"]
    start = datetime(2026, 9, 30, 17, 0, tzinfo=SH)  # the eve of 国庆
    due = add_business_time(workday, start, timedelta(hours=2))
    assert (due - start).days >= 7  # the holiday week does not count
    ticket = _ticket(services.default_policy(), start, responded_at=start, due_resolution=due)
    shown = queue.Clocks(specs, start).load([ticket]).of(ticket)
    assert shown.text == "剩余 2小时0分"
    assert queue.duration_text(timedelta(minutes=200)) == "3小时20分"
    assert queue.duration_text(timedelta(minutes=45)) == "45分"


# --- saved views derived from their rules ------------------------------------------------------------------------

STEPS = {
    flow.NEW: [flow.RESPONDED, flow.WAITING],
    flow.RESPONDED: [flow.IN_PROGRESS, flow.WAITING, flow.CONFIRMING, flow.RESOLVED],
    flow.IN_PROGRESS: [flow.WAITING, flow.CONFIRMING, flow.RESOLVED],
    flow.WAITING: [flow.IN_PROGRESS, flow.RESPONDED],
    flow.CONFIRMING: [flow.RESOLVED, flow.IN_PROGRESS],
    flow.RESOLVED: [flow.CLOSED, flow.IN_PROGRESS],
    flow.CLOSED: [flow.IN_PROGRESS],
}


def _random_ticket(rng, regions, people, base) -> Ticket:
    """A ticket opened in the five days before ``base`` with a random history of status changes before ``base``,
    stamped as services._record_change would."""
    opened = base - timedelta(minutes=rng.randrange(1, 5 * 24 * 60))
    ticket = services.create_ticket(
        people["pm"],
        region=rng.choice(regions),
        **(
            FIELDS
            | {"severity": rng.choice(sla.SEVERITIES), "ticket_type": rng.choice(["咨询", "故障", "缺陷"])}
        ),
    )
    ticket.opened_at = opened
    ticket.tier = rng.choice(Ticket.Tier.values)
    ticket.assignee = rng.choice([None, people["agent"], people["engineer"], people["other"]])
    at, status = opened, flow.NEW
    for _ in range(rng.randrange(0, 6)):
        at += timedelta(minutes=rng.choice([5, 30, 90, 240, 600, 1500, 3000]))
        if at >= base:
            break
        target = rng.choice(STEPS[status])
        TicketChange.objects.create(ticket=ticket, at=at, old_status=status, new_status=target)
        if ticket.responded_at is None:
            ticket.responded_at = at
        if target == flow.RESOLVED:
            ticket.resolved_at = at
        elif target == flow.CLOSED:
            ticket.closed_at = at
        elif flow.is_reopen(status, target):
            ticket.resolved_at = ticket.closed_at = None
        status = target
    ticket.status = status
    ticket.save()
    services.refresh_due(ticket)
    return ticket


def _expected(tickets, now, user, tiers, scope_ids) -> dict[str, set[str]]:
    """Each view's tickets straight from the SLA evaluator's verdicts at ``now`` (not from the stored instants)."""
    result = {view: set() for view in queue.VIEWS}
    for t in tickets:
        if t.region_id not in scope_ids:
            continue
        result[""].add(t.number)
        if t.status not in flow.OPEN_STATUSES:
            continue
        states = services.clock_states(t, now=now)
        clocks = [states[c] for c in sla.QUEUE_CLOCKS if states[c].target is not None]
        overdue = any(s.breached for s in clocks)
        if overdue:
            result["overdue"].add(t.number)
        elif any(s.warning for s in clocks):
            result["due_soon"].add(t.number)
        if t.assignee_id == user.pk:
            result["mine"].add(t.number)
        if t.tier in tiers:
            result["group"].add(t.number)
    return result


@pytest.fixture
def people(make_user):
    return {
        "agent": make_user("q_agent", Role.AGENT, regions=("152502000", "152522000")),
        "engineer": make_user("q_engineer", Role.ENGINEER, regions=("152500000",)),
        "pm": make_user("q_pm", Role.PROJECT_MANAGER, regions=("152500000",)),
        "other": make_user("q_other", Role.AGENT, regions=("152500000",)),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_saved_views_are_exactly_their_rule(seed, regions, people):
    rng = random.Random(seed)
    counties = [regions[c] for c in ("152501000", "152502000", "152522000")]
    base = datetime(2026, 11, 9, 8, 0, tzinfo=SH) + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
    tickets = [_random_ticket(rng, counties, people, base) for _ in range(30)]
    seen = {view: 0 for view in queue.VIEWS}
    for user_key in ("agent", "engineer"):
        user = people[user_key]
        scope_ids = set(queue.visible_regions(user).values_list("pk", flat=True))
        tiers = set(queue.user_tiers(user))
        for _ in range(3):
            now = base + timedelta(minutes=rng.randrange(0, 4 * 24 * 60))
            expected = _expected(tickets, now, user, tiers, scope_ids)
            for view in queue.VIEWS:
                got = set(
                    queue.tickets(user, queue.Filters(view=view, status="all"), now).values_list(
                        "number", flat=True
                    )
                )
                assert got == expected[view], (user_key, view, now)
                seen[view] += len(got)
    assert all(seen.values()), seen  # every view had tickets to get right
    assert queue.user_tiers(people["agent"]) == ["first"]
    assert queue.user_tiers(people["engineer"]) == ["second", "vendor"]


@pytest.mark.django_db
def test_paused_clock_is_neither_overdue_nor_near_and_resumes_shifted(regions, people):
    pm = people["pm"]
    ticket = services.create_ticket(pm, region=regions["152502000"], **FIELDS)
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=datetime(2026, 11, 23, 9, 0, tzinfo=SH))
    ticket.refresh_from_db()
    at = datetime(2026, 11, 23, 9, 10, tzinfo=SH)
    for old, new in ((flow.NEW, flow.RESPONDED), (flow.RESPONDED, flow.WAITING)):
        TicketChange.objects.create(ticket=ticket, at=at, old_status=old, new_status=new)
    Ticket.objects.filter(pk=ticket.pk).update(status=flow.WAITING, responded_at=at)
    ticket.refresh_from_db()
    services.refresh_due(ticket)
    assert ticket.due_resolution is None and ticket.sla_overdue_at is None
    far = datetime(2026, 12, 31, 12, 0, tzinfo=SH)  # weeks later, still waiting for the requester
    for view in ("overdue", "due_soon"):
        assert not queue.tickets(pm, queue.Filters(view=view), far).exists()
    shown = queue.Clocks(services.calendars(), far).load([ticket]).of(ticket)
    assert shown.state == "paused" and shown.label == "已暂停"
    # The requester answers a week later: the deadline moves by the paused business time.
    back = datetime(2026, 11, 30, 9, 10, tzinfo=SH)
    TicketChange.objects.create(ticket=ticket, at=back, old_status=flow.WAITING, new_status=flow.IN_PROGRESS)
    Ticket.objects.filter(pk=ticket.pk).update(status=flow.IN_PROGRESS)
    ticket.refresh_from_db()
    services.refresh_due(ticket)
    unpaused = services.clock_states(ticket, now=back)["resolution"]
    assert ticket.due_resolution == unpaused.due > back
    assert ticket.sla_overdue_at == unpaused.breach_at
    assert not queue.tickets(pm, queue.Filters(view="overdue"), back).exists()
    assert queue.tickets(
        pm, queue.Filters(view="overdue"), unpaused.breach_at + timedelta(minutes=1)
    ).exists()


# --- filters never widen the scope --------------------------------------------------------------------------------


@pytest.fixture
def spread(regions, people):
    """One ticket in each county; the agent sees 152502000 and 152522000 only."""
    made = {}
    for code in ("152501000", "152502000", "152522000"):
        made[code] = services.create_ticket(people["pm"], region=regions[code], **FIELDS)
    services.assign(people["pm"], made["152502000"], people["agent"])
    return made


@pytest.mark.django_db
def test_region_filter_cannot_widen_scope(people, spread, client_for, token_for):
    agent = people["agent"]
    for code in ("152501000", "152500000", "999999999"):  # a county outside, the league above the grant, none
        assert not queue.tickets(agent, queue.Filters(region=code, status="all")).exists()
    assert set(queue.tickets(agent, queue.Filters(region="152502000")).values_list("number", flat=True)) == {
        spread["152502000"].number
    }
    foreign = spread["152501000"].number
    page = client_for(agent).get("/desk/", {"region": "152501000", "status": "all"})
    assert page.status_code == 400 and foreign.encode() not in page.content
    assert "不在您的授权区划内".encode() in page.content
    api = client_for(agent).get("/api/desk/tickets", {"region": "152501000"}, **token_for(agent))
    assert api.status_code == 200 and api.json() == []
    for view in ("", "mine", "group", "due_soon", "overdue"):
        for region in ("", "152501000", "152500000"):
            body = client_for(agent).get(
                "/api/desk/tickets", {"view": view, "status": "all", "region": region}
            )
            assert foreign not in {row["number"] for row in body.json()}
    with pytest.raises(ValidationError):
        queue.tickets(agent, queue.Filters(view="everything"))
    assert client_for(agent).get("/api/desk/tickets", {"view": "everything"}).status_code == 400


@pytest.mark.django_db
def test_page_and_api_views_filters_and_countdown(people, spread, client_for):
    agent = client_for(people["agent"])
    mine = spread["152502000"].number
    page = agent.get("/desk/", {"view": "mine"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-ticket="{mine}"' in html and spread["152522000"].number not in html
    assert 'data-view="mine"' in html and "我组待办" in html and "即将超时" in html and "已超时" in html
    assert "剩余" in html and "data-countdown" in html
    rows = agent.get("/api/desk/tickets", {"view": "mine"}).json()
    assert [r["number"] for r in rows] == [mine]
    assert rows[0]["sla"]["state"] == "ok" and rows[0]["sla"]["text"].startswith("剩余")
    from caiwei.desk.api import QueueTicketOut

    for row in agent.get("/api/desk/tickets", {"status": "all"}).json():
        QueueTicketOut.model_validate(row)  # the hand-written JSON is what the schema promises
    unassigned = agent.get("/api/desk/tickets", {"assignee": "none"}).json()
    assert {r["number"] for r in unassigned} == {spread["152522000"].number}
    by_person = agent.get("/api/desk/tickets", {"assignee": people["agent"].username}).json()
    assert [r["number"] for r in by_person] == [mine]
    assert agent.get("/api/desk/tickets", {"tier": "second"}).json() == []
    assert len(agent.get("/api/desk/tickets", {"q": mine}).json()) == 1
    assert agent.get("/desk/", {"tier": "bogus"}).status_code == 400


# --- query count does not grow with the page --------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_queries_do_not_grow_with_page_size(regions, people, client_for, django_assert_max_num_queries):
    pm = people["pm"]
    client = client_for(pm)
    services.create_ticket(pm, region=regions["152502000"], **FIELDS)
    client.get("/desk/")  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get("/desk/").status_code == 200
    with CaptureQueriesContext(connection) as one_api:
        assert len(client.get("/api/desk/tickets").json()) == 1
    for i in range(55):
        services.create_ticket(
            pm, region=regions[("152501000", "152502000")[i % 2]], **(FIELDS | {"title": f"工单 {i}"})
        )
    Ticket.objects.filter(pk__in=Ticket.objects.values("pk")[:20]).update(assignee=people["engineer"])
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get("/desk/")
    assert response.content.decode().count("data-ticket=") == 50
    with django_assert_max_num_queries(len(one_api.captured_queries)):
        assert len(client.get("/api/desk/tickets", {"limit": 100}).json()) == 56
