"""Escalation 自动升级: run on the worker's tick (and by `caiwei desk sweep`), acting before deadlines are missed."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from caiwei.accounts.models import User
from caiwei.audit.context import acting_as

from . import flow, services
from .models import Escalation, EscalationRule, Ticket

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
                ticket.tier = Ticket.Tier.SECOND
                if _sees(rule.target_user, ticket):
                    ticket.assignee = rule.target_user
                ticket.save(update_fields=["tier", "assignee"])
            elif rule.action == EscalationRule.Action.RAISE and ticket.severity != RAISE[ticket.severity]:
                ticket.severity = RAISE[ticket.severity]
                ticket.save(update_fields=["severity"])
            for user in _recipients(ticket, rule):
                services.notify(user, f"工单临近超时（{rule.name}）：{detail}", ticket)
    except IntegrityError:
        return None  # another worker fired it first
    return escalation


def sweep(now=None) -> int:
    """Check every open ticket against the active rules; return how many escalations fired."""
    rules = list(EscalationRule.objects.filter(active=True).select_related("target_user"))
    if not rules:
        return 0
    specs = services.calendars()
    now = now or timezone.now()
    fired_count = 0
    tickets = (
        Ticket.objects.filter(status__in=flow.OPEN_STATUSES)
        .select_related("policy", "assignee")
        .prefetch_related("changes", "policy__rules", "escalations")
    )
    with acting_as(None, "job"):
        for ticket in tickets.iterator(chunk_size=500):
            fired = {e.rule_id for e in ticket.escalations.all()}
            states = services.clock_states(ticket, now=now, specs=specs)
            for rule in due_rules(states, rules, ticket.severity, fired):
                if apply(ticket, rule, states) is not None:
                    fired_count += 1
    return fired_count
