"""The acceptance walk-through: an engineer writes a rule on the page, the PM approves it, a schedule runs it."""

from datetime import timedelta

import pytest

from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_engineer_writes_pm_approves_schedule_runs(
    live_server,
    users,
    regions,
    page,  # noqa: F811
    browser,  # noqa: F811
    tmp_path,
    settings,
):
    from caiwei.checks import services
    from caiwei.checks.models import CheckRun, CheckSchedule, Target, TargetDatabase
    from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

    SHOTS.mkdir(parents=True, exist_ok=True)
    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    path = tmp_path / "finance.sqlite3"
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{path}"  # the dry run's sandbox
    generate(f"sqlite:///{path}", GenerateSpec(payments=1500, seed=5, faults=parse_faults("all=1")))
    production = Target.objects.create(name="生产财政库", system="国库集中支付", region=regions["152501000"])
    database = TargetDatabase.objects.create(
        target=production, name="业务库", dialect="sqlite", database=str(path), as_of="2026-12-31"
    )

    log_in(page, live_server, users["engineer"].username)
    page.goto(f"{live_server.url}/checks/")
    page.click("#local-rules-link")
    page.select_option("#copy", "QUOTA-001")
    page.click('button:has-text("复制")')
    page.wait_for_selector("#id_text")
    text = page.input_value("#id_text").replace("title: 指标超支", "title: 指标超支（本地）")
    page.fill("#id_text", text)
    page.click("#validate")
    page.wait_for_selector("#validation-result[data-ok='1']")
    assert int(page.locator("[data-dry-count]").inner_text()) >= 1
    assert "检查日 2026-12-31" in page.locator("#validation-result").inner_text()  # the sandbox's own as-of
    page.screenshot(path=str(SHOTS / "local-rule-validate.png"), full_page=True)
    page.click("#save")
    page.wait_for_selector("#versions")
    page.click("#submit")
    page.wait_for_selector("tr[data-version='1'][data-status='submitted']")
    detail = page.url
    page.screenshot(path=str(SHOTS / "local-rule-submitted.png"), full_page=True)

    pm = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    log_in(pm, live_server, users["pm"].username)
    pm.goto(detail)
    pm.fill("[data-decide] input[name=reason]", "已核对，同意上线")
    pm.click('[data-decide] button:has-text("批准")')
    pm.wait_for_selector("tr[data-version='1'][data-status='approved']")
    assert "第 1 版" in pm.locator("#in-use").inner_text()
    pm.screenshot(path=str(SHOTS / "local-rule-approved.png"), full_page=True)

    schedule = services.save_schedule(
        users["pm"], CheckSchedule(database=database, cron="0 2 * * *", packs="local")
    )
    assert services.fire_schedules(now=schedule.next_run_at + timedelta(minutes=1)) == 1  # the worker's tick
    run = CheckRun.objects.get(schedule=schedule)
    if run.status != CheckRun.Status.DONE:  # queued for the worker: run its job here
        run = services.execute(run)
    result = run.results.get(rule_id="L-QUOTA-001")
    assert result.title == "指标超支（本地）" and result.count >= 1 and not result.error
    page.goto(f"{live_server.url}/checks/runs/{run.pk}/")
    page.wait_for_selector('tr[data-rule="L-QUOTA-001"]')
    page.screenshot(path=str(SHOTS / "local-rule-scheduled-run.png"), full_page=True)
