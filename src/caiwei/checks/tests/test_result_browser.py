"""The result page of a duplicate payment at 1440×900 in Debian's Chromium: the evidence is on screen."""

from datetime import date

import pytest

from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_duplicate_payment_evidence_fits_at_1440(live_server, users, regions, page, tmp_path, settings):  # noqa: F811
    from caiwei.checks import services
    from caiwei.checks.models import Target, TargetDatabase
    from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    path = tmp_path / "finance.sqlite3"
    generate(f"sqlite:///{path}", GenerateSpec(payments=3000, seed=5, faults=parse_faults("all=1")))
    target = Target.objects.create(name="演练财政库", system="国库集中支付", region=regions["152500000"])
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(path), as_of=date(2026, 12, 31)
    )
    run = services.start_run(users["engineer"], database, "duplicate_payment,assets", inline=True)
    dup = run.results.get(rule_id="DUP-001")
    SHOTS.mkdir(parents=True, exist_ok=True)

    log_in(page, live_server, users["finance"].username)
    page.goto(f"{live_server.url}/checks/results/{dup.pk}/")
    page.locator("#sample").scroll_into_view_if_needed()
    width = page.viewport_size["width"]
    assert (
        page.evaluate("document.documentElement.scrollWidth") <= width
    )  # the page itself never scrolls sideways
    proof = page.locator("#sample th[data-kind=key], #sample th[data-kind=evidence]")
    names = [proof.nth(i).get_attribute("data-column") for i in range(proof.count())]
    assert names == ["pay_app_id", "payee_acct_no", "pay_amt", "pay_app_date", "use_des", "surplus_amt"]
    for i in range(proof.count()):
        box = proof.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (names[i], box)
    first_row = page.locator("#sample tbody tr").first.locator("td")
    for i in range(len(names)):  # the cells too, not only the headings
        box = first_row.nth(i).bounding_box()
        assert box["x"] + box["width"] <= width, (names[i], box)
    assert page.locator("[data-amount-label]").inner_text() == "重复多付金额"
    headings = page.locator("#sample thead").inner_text()
    assert "收款账号" in headings and "payee_acct_no" not in headings  # a finance user reads Chinese only
    page.screenshot(path=str(SHOTS / "checks-result-1440.png"), full_page=False)

    page.goto(f"{live_server.url}/checks/")
    assert "部分检查" in page.locator("#targets").inner_text()
    page.screenshot(path=str(SHOTS / "checks-index-finance.png"), full_page=True)
