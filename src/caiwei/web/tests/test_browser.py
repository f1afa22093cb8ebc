"""Every role logs in through Debian's Chromium and sees its home page; screenshots land in var/screenshots."""

import os
from pathlib import Path

import pytest
from django.conf import settings

from caiwei.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(settings.VAR_DIR) / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian 的 Chromium 未安装（apt-get install chromium）")
        pytest.skip("Debian 的 Chromium 未安装")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            # --lang: the browser's own widgets (file and date inputs) as a Chinese user's Chromium draws them.
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--lang=zh-CN",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    assert not errors, f"页面控制台报错：{errors}"


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if "/accounts/login/enrol/" in page.url:
        # The three administrators bind an authenticator at their first sign-in: read the key off the page.
        import base64

        from django_otp.oath import TOTP

        secret = page.locator("[data-otp-secret]").inner_text().replace(" ", "")
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"otp-enrol-{username}.png"), full_page=True)
        page.fill("#id_code", f"{TOTP(key).token():06d}")
        page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


ROLE_TILES = {
    "agent": "服务台 · 工单",
    "engineer": "数据检查",
    "pm": "巡检与监控",
    "finance": "银行对账",
    "approver": "数据运维",
    "unit": "知识库",
    "bank": "银行对账",
    "sysadmin": "账号管理",
    "secadmin": "授权管理",
    "auditor": "审计日志",
}


@pytest.mark.parametrize("role", sorted(ROLE_TILES))
def test_each_role_logs_in_and_sees_home(live_server, users, page, role):
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server, users[role].username)
    assert page.locator(".navbar-brand").inner_text() == "财维"
    assert page.locator(f'.cw-tile:has-text("{ROLE_TILES[role]}")').count() == 1
    # Bootstrap's stylesheet (from the npm registry) is loaded: the navbar is laid out horizontally.
    assert page.evaluate("getComputedStyle(document.querySelector('.navbar')).display") == "flex"
    page.screenshot(path=str(SHOTS / f"home-{role}.png"), full_page=True)


def test_auditor_verifies_chain_from_the_page(live_server, users, page):
    log_in(page, live_server, users["auditor"].username)
    page.click("text=审计日志")
    page.wait_for_selector("text=只可追加")
    page.click("text=校验哈希链")
    page.wait_for_selector("[data-status=succeeded]", timeout=20000)
    assert page.locator("[data-summary]").inner_text().startswith("审计链完整")
    page.screenshot(path=str(SHOTS / "audit-verify.png"), full_page=True)


def test_secadmin_cannot_give_two_admin_roles(live_server, users, page):
    log_in(page, live_server, users["secadmin"].username)
    page.goto(f"{live_server.url}/accounts/grants/{users['agent'].pk}/")
    page.check("input[value=sysadmin]")
    page.check("input[value=auditor]")
    page.click("button:has-text('保存')")
    page.wait_for_selector("text=三员分设")
    page.screenshot(path=str(SHOTS / "grant-refused.png"), full_page=True)


def test_lockout_message_in_browser(live_server, users, page):
    for _ in range(settings.LOCKOUT_THRESHOLD):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", users["unit"].username)
        page.fill("#id_password", "wrong-password")
        page.click("button[type=submit]")
    assert "账号已锁定" in page.locator(".alert-danger").inner_text()
    page.screenshot(path=str(SHOTS / "login-locked.png"))


def test_calendar_calculator(live_server, users, page):
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    ensure_defaults(BusinessCalendar, KeyPeriod)  # a transactional test starts from an emptied database
    log_in(page, live_server, users["pm"].username)
    page.goto(f"{live_server.url}/calendar/")
    page.fill("input[name=start]", "2026-09-30T17:30")
    page.fill("input[name=minutes]", "60")
    page.click("button:has-text('计算')")
    page.wait_for_selector("[data-due]")
    assert page.locator("[data-due]").get_attribute("data-due").startswith("2026-10-08T09:00")
    page.screenshot(path=str(SHOTS / "calendar.png"), full_page=True)


def test_sandbox_page(live_server, users, page, settings, tmp_path):
    from caiwei.sandbox import service

    settings.VAR_DIR = tmp_path
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{tmp_path / 'sandbox.sqlite3'}"
    service.load_default(payments=3000)
    log_in(page, live_server, users["pm"].username)
    page.click(".navbar >> text=演练环境")
    page.wait_for_selector("text=注入的故障")
    # 3 000 asked for, plus the second payment of duplicate_payment and of near_duplicate_payment
    assert page.locator('[data-table="pay_voucher"]').inner_text() == "3002"
    assert page.locator("text=指标超支").count() == 1
    page.screenshot(path=str(SHOTS / "sandbox.png"), full_page=True)


def test_hotline_to_resolution_confirmed_and_rated(live_server, users, regions, page, browser):
    """The issue's walk-through: a missed call, the callback, a ticket, 二线 resolves, the budget unit confirms and rates."""
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    ensure_defaults(BusinessCalendar, KeyPeriod)
    log_in(page, live_server, users["agent"].username)
    page.click(".navbar >> text=服务台 · 工单")
    page.click("text=热线登记")
    page.select_option("#id_region", label="锡林浩特市（152502000）")
    page.fill("#id_caller_number", "0479-5000000")
    page.fill("#id_caller_name", "经办人（演示）")
    page.fill("#id_summary", "支付凭证发送失败")
    page.uncheck("#id_answered")  # 已接听 is ticked by default: this call was missed
    page.click("button:has-text('登记')")
    page.wait_for_selector("text=回拨时限")
    page.fill("[data-pending] input[name=summary]", "已回拨，需开工单")
    page.click("[data-pending] button:has-text('已回拨')")
    page.wait_for_selector("text=没有待回拨的来电")
    page.click("a:has-text('开工单')")
    page.select_option("#id_system", "国库集中支付")
    page.select_option("#id_ticket_type", "故障")
    page.fill("#id_description", "凭证状态一直为“发送中”，请协助处理")
    page.click("button:has-text('登记')")
    page.wait_for_selector("text=已登记工单")
    page.select_option("select[name=status]", "responded")
    page.click("button:has-text('提交')")
    page.wait_for_selector("[data-status=responded]")
    page.select_option("select[name=assignee]", label=str(users["engineer"]))
    page.select_option("select[name=tier]", "second")
    page.click("button:has-text('分派')")
    page.wait_for_selector("text=二线")
    page.screenshot(path=str(SHOTS / "desk-ticket.png"), full_page=True)
    number = page.locator("h1 + div").inner_text().split(" ")[0]
    page.goto(f"{live_server.url}/desk/")
    assert page.locator(f"[data-ticket='{number}']").count() == 1
    page.screenshot(path=str(SHOTS / "desk-queue.png"), full_page=True)

    from caiwei.desk.models import Ticket

    Ticket.objects.filter(number=number).update(requester=users["unit"])  # the caller's own portal account
    engineer = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    log_in(engineer, live_server, users["engineer"].username)
    engineer.goto(f"{live_server.url}/desk/{number}/")
    engineer.select_option("select[name=status]", "confirming")
    engineer.fill("input[name=note]", "已重发凭证，银行已回单，请确认")
    engineer.click("button:has-text('提交')")
    engineer.wait_for_selector("[data-status=confirming]")

    unit = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    log_in(unit, live_server, users["unit"].username)
    unit.click(".cw-tile >> text=我的工单")
    unit.wait_for_selector("text=等待您确认或评价")
    unit.screenshot(path=str(SHOTS / "desk-portal.png"), full_page=True)
    unit.click(f"[data-ticket='{number}'] a")
    unit.click("button:has-text('认可')")
    unit.wait_for_selector("[data-status=resolved]")
    unit.select_option("select[name=score]", "5")
    unit.fill("input[name=comment]", "处理及时")
    unit.click("button:has-text('提交评价')")
    unit.wait_for_selector("[data-survey='5']")
    assert unit.locator("text=内部备注").count() == 0
    unit.screenshot(path=str(SHOTS / "desk-portal-ticket.png"), full_page=True)


def test_kpi_dashboard_draws_charts(live_server, users, regions, page):
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod
    from caiwei.desk.tests.test_report import rated_tickets

    ensure_defaults(BusinessCalendar, KeyPeriod)
    rated_tickets(users, regions, (("152502000", 5), ("152501000", 3), ("152502000", 1)))
    log_in(page, live_server, users["pm"].username)
    page.goto(f"{live_server.url}/desk/dashboard/")
    page.wait_for_selector("#chart-satisfaction svg")
    assert page.locator("#chart-systems svg").count() == 1
    assert page.locator("[data-kpi=tickets]").inner_text() == "3"
    page.screenshot(path=str(SHOTS / "desk-dashboard.png"), full_page=True)


def test_data_checks_from_run_to_ticket(live_server, users, regions, page, tmp_path, settings):
    """An engineer runs the packs on the sandbox, reads a result a finance user understands, opens a ticket."""
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod
    from caiwei.checks.models import Target, TargetDatabase
    from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

    ensure_defaults(BusinessCalendar, KeyPeriod)  # a transactional test starts from an empty database
    SHOTS.mkdir(parents=True, exist_ok=True)
    settings.CAIWEI_SQLITE_TARGET_DIR = str(
        tmp_path
    )  # SQLite targets live only under the configured directory
    path = tmp_path / "finance.sqlite3"
    generate(f"sqlite:///{path}", GenerateSpec(payments=3000, seed=5, faults=parse_faults("all=1")))
    target = Target.objects.create(
        name="演练财政库", system="国库集中支付", region=regions["152500000"], is_sandbox=True
    )
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(path), as_of="2026-12-31"
    )
    log_in(page, live_server, users["engineer"].username)
    page.click('.cw-tile:has-text("数据检查")')
    page.wait_for_url(f"{live_server.url}/checks/")
    assert page.locator("#targets").inner_text().count("演练财政库") == 1
    page.screenshot(path=str(SHOTS / "checks-index.png"), full_page=True)
    page.click('#run-form button:has-text("开始检查")')
    page.wait_for_selector('[data-status="done"]')
    assert int(page.locator("[data-findings]").inner_text()) > 0
    page.screenshot(path=str(SHOTS / "checks-run.png"), full_page=True)
    page.click('tr[data-rule="DUP-001"] a')
    page.wait_for_selector("#sample")
    assert "收款账号（payee_acct_no）" in page.locator("#sample").inner_text()
    assert "1525" in page.locator("#units").inner_text()  # failing units with their names
    assert "逐笔核对原始单据" in page.content() and "pay_voucher" in page.locator("#listing-sql").inner_text()
    page.wait_for_selector("#chart-trend svg")
    page.screenshot(path=str(SHOTS / "checks-result.png"), full_page=True)
    page.click('button:has-text("开工单")')
    page.wait_for_load_state()
    page.screenshot(path=str(SHOTS / "checks-ticket.png"), full_page=True)
    page.wait_for_selector("[data-check-result]")
    assert "DUP-001 疑似重复支付" in page.locator("[data-check-result]").inner_text()
    page.goto(f"{live_server.url}/checks/rules/?pack=personnel")
    page.click("#rule-PERSON-002 summary")
    assert "10X98765432" in page.locator("#rule-PERSON-002 pre").inner_text()
    page.screenshot(path=str(SHOTS / "checks-rules.png"), full_page=True)
    page.goto(f"{live_server.url}/checks/databases/{database.pk}/")
    page.fill("#id_timeout_s", "120")
    page.click('button:has-text("保存并测试连接")')
    page.wait_for_url(f"{live_server.url}/checks/")
    assert "连接成功" in page.locator(".alert").first.inner_text()
    page.screenshot(path=str(SHOTS / "checks-connection.png"), full_page=True)
