"""A near-duplicate payment's result page at 1440×900 in Debian's Chromium: each pair side by side, 第一笔 left and
第二笔 right, the fields that differ marked."""

from datetime import date

import pytest

from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_near_duplicate_pairs_side_by_side(live_server, users, regions, page, tmp_path, settings):  # noqa: F811
    from caiwei.checks import services
    from caiwei.checks.models import Target, TargetDatabase
    from caiwei.sandbox.generator import NEAR_DUPLICATE_SHAPES, GenerateSpec, generate, parse_faults

    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    path = tmp_path / "finance.sqlite3"
    faults = parse_faults(f"near_duplicate_payment={len(NEAR_DUPLICATE_SHAPES)}")
    generate(f"sqlite:///{path}", GenerateSpec(payments=3000, seed=5, faults=faults))
    target = Target.objects.create(name="演练财政库", system="国库集中支付", region=regions["152500000"])
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(path), as_of=date(2026, 12, 31)
    )
    run = services.start_run(users["engineer"], database, "duplicate_payment", inline=True)
    result = run.results.get(rule_id="DUP-003")
    assert result.count == len(NEAR_DUPLICATE_SHAPES) - 1  # every shape but the account written differently
    SHOTS.mkdir(parents=True, exist_ok=True)

    log_in(page, live_server, users["finance"].username)
    page.goto(f"{live_server.url}/checks/results/{result.pk}/")
    pairs = page.locator("#pairs table.cw-pair")
    assert pairs.count() == result.count
    pairs.first.scroll_into_view_if_needed()
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    first_pair = pairs.first
    assert first_pair.locator("thead").inner_text().split() == ["第", "1", "对", "第一笔", "第二笔"]
    names = first_pair.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.field)")
    assert names[:6] == [
        "pay_app_id",
        "pay_app_no",
        "pay_app_date",
        "payee_acct_name",
        "payee_acct_no",
        "use_des",
    ]
    # Both payments' payee names side by side on one line, left the first, right the second, marked as different.
    name_row = first_pair.locator("tr[data-field=payee_acct_name]")
    left, right = name_row.locator("td[data-side=first]"), name_row.locator("td[data-side=second]")
    a, b = left.bounding_box(), right.bounding_box()
    assert abs(a["y"] - b["y"]) < 2 and a["x"] + a["width"] <= b["x"] + 1 and b["x"] + b["width"] <= width
    assert name_row.get_attribute("data-differs") is not None and "不同" in name_row.inner_text()
    assert left.inner_text() != right.inner_text()
    # The shared fields (unit, amount, days apart) are one cell over both columns, not marked.
    amount = first_pair.locator("tr[data-field=pay_amt]")
    assert amount.locator("td").count() == 1 and amount.get_attribute("data-differs") is None
    assert "成对比较" in page.locator("h2", has_text="成对比较").inner_text()
    marked = page.locator("#pairs tr[data-differs]").evaluate_all("rows => rows.map(r => r.dataset.field)")
    assert "payee_acct_name" in marked and "pay_app_date" in marked  # names differ; one pair is days apart
    page.screenshot(path=str(SHOTS / "checks-near-duplicate-pairs.png"), full_page=False)
