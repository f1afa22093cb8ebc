import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


@register.filter
def percent(value) -> str:
    """0.965 → “96.5%”; None → “-” (no data is not 0 %)."""
    if value is None:
        return "-"
    return f"{value * 100:.1f}%".replace(".0%", "%")


@register.filter
def get_item(mapping, key):
    """``mapping|get_item:key`` — a dictionary lookup with a variable key."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def money(value) -> str:
    """12345.6 → “12,345.60”; None → “”."""
    if value is None or value == "":
        return ""
    from decimal import Decimal

    return f"{Decimal(str(value)):,.2f}"


@register.filter
def may_open(user, url_name: str) -> bool:
    """``user|may_open:"desk:queue"`` — whether the page's declared policy (web.policy.PAGES) lets ``user`` in before
    any object is named: a link to a page the user would get a 403 from is not shown."""
    from caiwei.web import policy

    rule = policy.PAGES.get(url_name)
    return rule is not None and policy.admits(rule, user)
