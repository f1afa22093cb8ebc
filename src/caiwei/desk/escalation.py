"""Escalation 自动升级: run on the worker's tick (and by `caiwei desk sweep`), acting before deadlines are missed."""

from __future__ import annotations

from collections import defaultdict

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from caiwei.accounts.models import User
from caiwei.audit.context import acting_as

from . import flow, services, sla
from .models import Escalation, EscalationRule, SlaPolicy, Ticket, TicketChange

RAISE = {"一般": "紧急", "紧急": "重大", "重大": "重大"}


def due_rules(
    states: dict, rules: list[EscalationRule], severity: str, fired: set[int]
) -> list[EscalationRule]:
    """The rules whose threshold a running, unmet clock has reached and that have not fired for this ticket."""
    result = []
    for rule in rules:
        state = states.get(rule.clock)
        if rule.pk in fired or (rule.severity and rule.severity != severity) or state is None:
            continue
        if state.target is None or state.met_at is not None or not state.target_minutes:
            continue
        if state.elapsed_minutes >= state.target_minutes * rule.at_percent / 100:
            result.append(rule)
    return result


def _sees(user: User | None, ticket: Ticket) -> bool:
    """Whether ``user`` may open ``ticket``: a rule is global, its target user is of one region."""
    return user is not None and Ticket.objects.visible_to(user).filter(pk=ticket.pk).exists()


def _recipients(ticket: Ticket, rule: EscalationRule) -> list[User]:
    people = [u for u in (rule.target_user, ticket.assignee) if _sees(u, ticket)]
    if not people:
        people = list(User.objects.filter(role_grants__role="pm", is_active=True))
    # Nobody hears of a ticket of a region outside their grant.
    return [u for u in {u.pk: u for u in people}.values() if _sees(u, ticket)]


def apply(ticket: Ticket, rule: EscalationRule, states: dict) -> Escalation | None:
    state = states[rule.clock]
    detail = f"{ticket.number} {state.clock} 已用 {state.elapsed_minutes:.0f}/{state.target_minutes:.0f} 分钟：{rule.get_action_display()}"
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(ticket=ticket, rule=rule, detail=detail[:300])
            if rule.action == EscalationRule.Action.REASSIGN:
                # Recorded like a hand assignment (by the system), so the timeline and the history show it.
                target = rule.target_user if _sees(rule.target_user, ticket) else ticket.assignee
                services.record_assignment(None, ticket, target, Ticket.Tier.SECOND)
            elif rule.action == EscalationRule.Action.RAISE and ticket.severity != RAISE[ticket.severity]:
                ticket.severity = RAISE[ticket.severity]
                ticket.save(update_fields=["severity"])
                services.refresh_due(ticket)  # a higher severity has shorter targets
            for user in _recipients(ticket, rule):
                services.notify(user, f"工单临近超时（{rule.name}）：{detail}", ticket)
    except IntegrityError:
        return None  # another worker fired it first
    return escalation


FIELDS = ("pk", "status", "severity", "ticket_type", "opened_at", "policy_id", *services.DUE_FIELDS)
CHUNK = 2000


def _sla_ticket(opened, severity: str, ticket_type: str, changes: list[flow.Change]) -> sla.Ticket:
    """As ``services.clock_states`` builds it, from plain rows (the sweep reads 50 000 tickets a minute)."""
    line = flow.timeline(changes)
    return sla.Ticket(
        opened,
        severity,
        ticket_type,
        responded_at=line.responded_at,
        resolved_at=line.resolved_at,
        pauses=line.pauses,
        reopened_at=line.reopened_at,
        resolved_history=line.resolved_history,
    )


def _fresh(states: dict) -> tuple:
    return (states["first_response"].due, states["resolution"].due, *sla.queue_instants(states))


def _settle(stale: list[tuple[int, str, tuple, tuple]]) -> int:
    """Store the due and queue instants of tickets whose history gives other values than those stored (a calendar
    or policy edit, a ticket loaded in bulk). Compare-and-set on the status and the values read: a status change or
    escalation committed meanwhile has recomputed them from newer facts, and wins. One batched statement."""
    table = Ticket._meta.db_table
    columns = [Ticket._meta.get_field(f).column for f in services.DUE_FIELDS]
    assign = ", ".join(f"{c} = %s" for c in columns)
    same = " AND ".join(f"{c} IS NOT DISTINCT FROM %s" for c in columns)
    sql = f"UPDATE {table} SET {assign} WHERE id = %s AND status = %s AND {same}"  # noqa: S608 (names from the model)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, [(*fresh, pk, status, *old) for pk, status, old, fresh in stale])
    return len(stale)


def sweep(now=None) -> int:
    """Check every open ticket against the active rules; return how many escalations fired.

    The same pass keeps each open ticket's stored due and queue instants current (they change with its history,
    which recomputes them, and with edits of calendars and policies, which only this pass sees). Tickets are read
    as plain rows in primary-key order, CHUNK at a time with their status changes; a ticket is loaded as a model
    only when a rule fires for it.
    """
    rules = list(EscalationRule.objects.filter(active=True).select_related("target_user"))
    specs = services.calendars()
    engines = {p.pk: p.engine() for p in SlaPolicy.objects.prefetch_related("rules")}
    clocks = tuple(sorted(set(sla.QUEUE_CLOCKS) | {r.clock for r in rules}))
    now = now or timezone.now()
    fired_count = 0
    open_tickets = Ticket.objects.filter(status__in=sorted(flow.OPEN_STATUSES)).order_by("pk")
    last = 0
    with acting_as(None, "job"):
        while True:
            rows = list(open_tickets.filter(pk__gt=last).values_list(*FIELDS)[:CHUNK])
            if not rows:
                break
            last = rows[-1][0]
            ids = [row[0] for row in rows]
            changes: dict[int, list[flow.Change]] = defaultdict(list)
            for ticket_id, at, old, new in (
                TicketChange.objects.filter(ticket_id__in=ids)
                .order_by("at", "pk")
                .values_list("ticket_id", "at", "old_status", "new_status")
            ):
                changes[ticket_id].append(flow.Change(at, old, new))
            fired: dict[int, set[int]] = defaultdict(set)
            if rules:
                for ticket_id, rule_id in Escalation.objects.filter(ticket_id__in=ids).values_list(
                    "ticket_id", "rule_id"
                ):
                    fired[ticket_id].add(rule_id)
            stale = []
            for pk, status, severity, ticket_type, opened, policy_id, *stored in rows:
                item = _sla_ticket(opened, severity, ticket_type, changes.get(pk, []))
                try:
                    states = sla.evaluate(engines[policy_id], specs, item, now, clocks)
                except ValueError:
                    continue  # a severity or type the policy does not know: nothing to measure
                fresh = _fresh(states)
                if tuple(stored) != fresh:
                    stale.append((pk, status, tuple(stored), fresh))
                due = due_rules(states, rules, severity, fired[pk]) if rules else []
                if due:
                    ticket = Ticket.objects.select_related("policy", "assignee").get(pk=pk)
                    for rule in due:
                        if apply(ticket, rule, states) is not None:
                            fired_count += 1
            if stale:
                _settle(stale)
    return fired_count
