"""Template filters that put technical settings in words: {{ run.packs|packs_words }}, {{ s.cron|cron_words }},
{{ db|connection_words }}."""

from django import template

from ..describe import connection_text, cron_text, packs_text
from ..engine import shipped_rule

register = template.Library()


@register.filter
def packs_words(packs: str) -> dict:
    return packs_text(packs)


@register.filter
def cron_words(expression: str) -> str:
    return cron_text(expression)


@register.filter
def connection_words(database) -> str:
    return connection_text(database)


@register.filter
def amount_label(rule_id: str) -> str:
    rule = shipped_rule(rule_id)
    return rule.amount_label if rule else "涉及金额"


@register.filter
def money_cell(value) -> str:
    """A sample's amount as “12,345.60”; anything that is not a number stays as it is."""
    from decimal import Decimal, InvalidOperation

    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)
