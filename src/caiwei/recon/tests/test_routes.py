"""Route × role for the reconciliation pages and API, beside the whole-site matrix of web/tests/test_policy.py
(which covers every role, 403 without the capability and 404 for another region's objects): here the bank users —
of the break's bank (its pages open, running and resolving refused with 403) and of another bank (every route that
names the break answers 404, like a break that does not exist) — and a county account on the league's objects."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from caiwei.accounts.roles import Role
from caiwei.recon.models import ReconBreak, ReconRun
from caiwei.web import policy

from .conftest import set_bank

pytestmark = pytest.mark.django_db


def recon_routes():
    from caiwei.web.tests.test_policy import api_operations, page_routes

    for route, name in page_routes():
        if name.startswith("recon:"):
            yield "GET", "/" + route, policy.PAGES[name]
    for method, path in api_operations():
        if path.startswith("/api/recon/"):
            yield method, path, policy.API[(method, path)]


def fill(route: str, rule, run, brk) -> str:
    values = {}
    for obj in rule.objs:  # a run or a break; any other object (a sign-off, a source) stays unknown
        if obj.queryset.endswith(("visible_runs", "statement_runs")):
            values[obj.kwarg] = run.pk
        elif obj.queryset.endswith("visible_breaks"):
            values[obj.kwarg] = brk.pk
    return re.sub(r"[<{](?:[^>:}]+:)?([^>}]+)[>}]", lambda m: str(values.get(m.group(1), 987654321)), route)


def call(client, method, url):
    if method == "GET":
        response = client.get(url)
        return client.post(url, {}) if response.status_code == 405 else response
    return client.generic(method, url, json.dumps({}), content_type="application/json")


@pytest.fixture
def objects(recon):
    run = ReconRun.objects.create(
        region=recon["region"],
        database=recon["database"],
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        as_of=date(2026, 12, 31),
        status="done",
    )
    brk = ReconBreak.objects.create(
        region=recon["region"],
        database=recon["database"],
        fingerprint="x",
        bank_code="B101",
        kind="bank_only",
        lines=[{"file": "B101_支付清单.csv", "line": 2, "serial": "S1", "amount": "1.00"}],
        first_run=run,
        last_run=run,
    )
    return run, brk


def test_bank_users_and_another_region_on_every_recon_route(recon, objects, client_for):
    run, brk = objects
    people = recon["people"]
    own_bank = client_for(set_bank(people["bank"], "B101"))
    other_bank = client_for(set_bank(people["other_bank"], "B102"))
    county = client_for(people["county"])
    holes, cells = [], 0
    for method, route, rule in recon_routes():
        url = fill(route, rule, run, brk)
        names_break = any(o.queryset.endswith("visible_breaks") for o in rule.objs)
        allowed = rule.allows_role_set({Role.BANK_USER})
        for who, client in (("本行", own_bank), ("他行", other_bank), ("外区", county)):
            cells += 1
            status = call(client, method, url).status_code
            if status >= 500:
                holes.append(f"{who} {method} {url}: {status}")
            elif who != "外区" and not allowed:
                if status != 403:
                    holes.append(f"{who} {method} {url}: 应为 403，得 {status}")
            elif (
                who == "他行"
                and names_break
                and status != 404
                or (
                    who == "外区"
                    and rule.objs
                    and status != 404
                    and rule.allows_role_set({Role.FINANCE_STAFF, Role.ENGINEER})
                )
            ):
                holes.append(f"{who} {method} {url}: 应为 404，得 {status}")
            elif who == "本行" and status in (401, 403, 404) and "987654321" not in url:
                holes.append(f"{who} {method} {url}: 应可访问，得 {status}")
    assert cells > 40
    assert holes == []
