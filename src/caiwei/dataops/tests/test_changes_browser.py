"""The data change walk-through in Debian's Chromium: a data-check finding on a PostgreSQL finance database → a change
request prefilled from it (guided fix) → submitted → approved by a finance approver (another person) → executed in
its window → before/after images shown masked → rolled back → the rows are as they were. Screenshot /tmp/change.png."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401  (fixtures reused)
from caiwei.web.tests.test_walkthrough import COLLECT_TEXT, english_in

from .conftest import LEAGUE, register

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _vouchers(engine) -> dict:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS gl_voucher")
        conn.exec_driver_sql(
            "CREATE TABLE gl_voucher (gl_vou_id VARCHAR(20) PRIMARY KEY, bus_kind VARCHAR(10) NOT NULL, "
            "amount DECIMAL(14, 2) NOT NULL, payee_acct_no VARCHAR(30))"
        )
        for i in range(1, 9):
            conn.exec_driver_sql(
                "INSERT INTO gl_voucher VALUES (%s, %s, %s, %s)",
                (f"GV{i:04d}", "支付", f"{i * 100}.50", f"62220200{i:011d}"),
            )
    with engine.connect() as conn:
        return {r[0]: tuple(r) for r in conn.exec_driver_sql("SELECT * FROM gl_voucher ORDER BY gl_vou_id")}


def _no_english(tab) -> None:
    assert english_in(tab.evaluate(COLLECT_TEXT)) == [], tab.url


def test_finding_to_change_approved_by_another_executed_and_rolled_back(
    live_server,
    page,  # noqa: F811
    regions,
    make_user,
):
    from caiwei.accounts.roles import Role
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod
    from caiwei.checks.models import CheckRun, RuleResult
    from caiwei.dataops.models_changes import ChangeRequest

    ensure_defaults(BusinessCalendar, KeyPeriod)
    database, engine = register("postgresql", regions[LEAGUE])
    before = _vouchers(engine)
    make_user("b_engineer", Role.ENGINEER, regions=(LEAGUE,))
    make_user("b_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,))
    run = CheckRun.objects.create(
        database=database, packs="accounting", as_of=date(2026, 12, 31), status="done"
    )
    result = RuleResult.objects.create(
        run=run,
        rule_id="ACC-001",
        pack="accounting",
        title="科目记账方向与业务类型不符",
        severity="紧急",
        module="总预算会计",
        count=2,
        keys=[["GV0003"], ["GV0005"]],
    )
    page.on("dialog", lambda dialog: dialog.accept())

    # the engineer opens the finding and asks for a change
    log_in(page, live_server, "b_engineer")
    page.goto(f"{live_server.url}/checks/results/{result.pk}/")
    page.click("#finding-change")
    page.wait_for_load_state()
    assert page.input_value("#id_fix_table") == "gl_voucher"
    assert page.input_value("#id_fix_key_columns") == "gl_vou_id"
    assert page.input_value("#id_fix_keys").split() == ["GV0003", "GV0005"]
    page.fill("#id_fix_column", "bus_kind")
    page.fill("#id_fix_value", "退款")
    page.fill("#id_emergency_plan", "发现异常立即停止执行，通知承建厂商")
    page.fill("#id_rollback_plan", "按前镜像一键回滚")
    start = timezone.localtime(timezone.now() - timedelta(minutes=10))
    page.fill("#id_window_start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_window_end", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.wait_for_selector("#review-result [data-total]")
    assert page.inner_text("#review-result [data-total]") == "2"
    _no_english(page)
    page.click("#save-change")
    page.wait_for_selector("#submit-change")
    page.click("#submit-change")
    page.wait_for_selector("h1 [data-status=pending]")
    change = ChangeRequest.objects.get()
    assert change.origin == "finding" and change.estimated_rows == 2

    # a finance approver (not the author) approves
    page.context.clear_cookies()
    log_in(page, live_server, "b_approver")
    page.goto(f"{live_server.url}/data/changes/{change.pk}/")
    page.fill("#decision-note", "已核对影响行数与回退方案")
    page.click("#approve-change")
    page.wait_for_selector("h1 [data-status=approved]")
    _no_english(page)

    # the engineer executes in the window, sees the images, and rolls back
    page.context.clear_cookies()
    log_in(page, live_server, "b_engineer")
    page.goto(f"{live_server.url}/data/changes/{change.pk}/")
    page.click("#execute-change")
    page.wait_for_selector("h1 [data-status=done]")
    assert page.locator("[data-images] tbody tr").count() == 2
    assert "62220200" not in page.inner_text("[data-images]") or "*" in page.inner_text("[data-images]")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM gl_voucher WHERE bus_kind = '退款'").scalar() == 2
    _no_english(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path="/tmp/change.png", full_page=True)
    page.screenshot(path=str(SHOTS / "change-executed.png"), full_page=True)
    page.click("#rollback-change")
    page.wait_for_selector("[data-conflicts='0']")
    _no_english(page)
    page.click("#confirm-rollback")
    page.wait_for_selector("h1 [data-status=rolled_back]")
    page.screenshot(path=str(SHOTS / "change-rolled-back.png"), full_page=True)
    with engine.connect() as conn:
        after = {r[0]: tuple(r) for r in conn.exec_driver_sql("SELECT * FROM gl_voucher ORDER BY gl_vou_id")}
    assert after == before
    engine.dispose()
