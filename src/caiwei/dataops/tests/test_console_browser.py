"""查询台 in Debian's Chromium: an engineer with a grant types a UNION ALL whose first column is an ID number in both
branches, runs it, and sees the grid with the column masked (every cell marked, no real number on the page); a
transformed column is refused in Chinese. Screenshot: /tmp/console.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from caiwei.dataops import services_console as services
from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401  (fixtures reused)
from caiwei.web.tests.test_walkthrough import BROKEN_BUTTONS, COLLECT_TEXT, NARROW_CELLS, english_in

from .test_console_web import console_var, qc  # noqa: F401  (fixtures reused)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNION = (
    "SELECT p.iden_no, p.person_name, p.agency_code FROM person_info p WHERE p.status = '在职'\n"
    "UNION ALL\n"
    "SELECT i.iden_no, i.person_name, i.agency_code FROM person_info i WHERE i.status <> '在职'"
)


def problems(tab) -> list[str]:
    """The walk-through's checks of a page: English outside code, cells too narrow, button labels broken."""
    return [
        *(f"英文：{w}" for w in english_in(tab.evaluate(COLLECT_TEXT))),
        *(f"列太窄：{c}" for c in tab.evaluate(NARROW_CELLS)),
        *(f"按钮文字折行：{b}" for b in tab.evaluate(BROKEN_BUTTONS)),
    ]


def test_a_masked_column_comes_back_masked_through_a_union(live_server, qc, page):  # noqa: F811
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    ensure_defaults(BusinessCalendar, KeyPeriod)
    services.grant(
        qc["people"]["pm"],
        user=qc["people"]["engineer"],
        database=qc["database"],
        tables=["person_info"],
        valid_until=timezone.now() + timedelta(days=7),
        row_limit=50,
    )
    log_in(page, live_server, "q_engineer")
    page.goto(f"{live_server.url}/data/query/")
    page.fill("#id_sql", UNION)
    page.click("#run")
    page.wait_for_selector("#grid")
    headers = page.locator("#grid thead th")
    assert headers.count() == 3
    assert (
        headers.nth(0).get_attribute("data-masked") == "1"
        and headers.nth(1).get_attribute("data-masked") == "1"
    )
    assert headers.nth(2).get_attribute("data-masked") is None
    first_column = page.locator("#grid tbody tr td:first-child")
    assert first_column.count() == int(page.inner_text("#row-count")) > 10
    assert all(first_column.nth(i).get_attribute("data-masked") == "1" for i in range(first_column.count()))
    assert all("*" in t for t in first_column.all_inner_texts())
    html = page.content()
    assert not any(v in html for v in qc["ids"])
    assert english_in(page.evaluate(COLLECT_TEXT)) == []
    page.screenshot(path="/tmp/console.png", full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-union.png"), full_page=True)

    page.fill("#id_sql", "SELECT substr(iden_no, 1, 10) AS head FROM person_info")
    page.click("#run")
    page.wait_for_selector("#refusal")
    assert "iden_no" in page.inner_text("#refusal") and "查询被拒绝" in page.inner_text("#refusal")
    assert problems(page) == []

    # the other pages of the console, as the engineer and as the project manager; an export request on the way
    page.goto(f"{live_server.url}/data/query/history/")
    page.locator("form input[name=reason]").first.fill("核对在职人员")
    page.locator("form button:has-text('申请导出')").first.click()
    page.wait_for_url("**/data/query/exports/")
    assert page.locator("tr[data-status=pending]").count() == 1
    for path in ("history/", "exports/", "classes/", f"classes/{qc['database'].pk}/"):
        page.goto(f"{live_server.url}/data/query/{path}")
        assert problems(page) == [], path
    page.context.clear_cookies()
    log_in(page, live_server, "q_pm")
    for path in ("grants/", "history/", "exports/", f"classes/{qc['database'].pk}/"):
        page.goto(f"{live_server.url}/data/query/{path}")
        assert problems(page) == [], path
        page.screenshot(path=str(SHOTS / f"console-{path.strip('/').replace('/', '-')}.png"), full_page=True)
