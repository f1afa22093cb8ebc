"""A budget-unit user answers 等待用户 from the portal in Debian's Chromium: 我的工单 → the ticket → reply with a file."""

import pytest

from caiwei.desk import flow, services
from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401  (fixtures reused)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000200a5d4e6"
    "5b0000000049454e44ae426082"
)


@pytest.fixture
def asked(users, regions, settings, tmp_path):
    """A ticket the unit raised, assigned, and now waiting for the unit's answer."""
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    settings.MEDIA_ROOT = str(tmp_path)
    ensure_defaults(BusinessCalendar, KeyPeriod)  # a transactional test before this one flushed them
    ticket = services.create_ticket(
        users["unit"],
        region=regions["152502000"],
        system="国库集中支付",
        ticket_type="故障",
        title="授权支付凭证被退回",
        description="凭证退回，原因不明",
        requester_name="经办人（演示）",
    )
    services.assign(users["agent"], ticket, users["engineer"], "second")
    services.change_status(users["agent"], ticket, flow.RESPONDED)
    services.change_status(users["agent"], ticket, flow.WAITING, "请提供被退回凭证的凭证号和退回截图")
    return ticket


def test_unit_answers_waiting_ticket_with_a_screenshot(live_server, users, page, asked, tmp_path):  # noqa: F811
    shot = tmp_path / "退回截图.png"
    shot.write_bytes(PNG)
    log_in(page, live_server, users["unit"].username)
    page.goto(f"{live_server.url}/desk/mine/")
    assert "等待您答复" in page.locator("[data-asked]").inner_text()
    page.click(f"[data-ticket='{asked.number}'] >> text=等待您答复")
    page.wait_for_selector("[data-reply-form]")
    assert "暂停计时" in page.locator("[data-clock='解决']").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "desk-requester-waiting.png"), full_page=True)
    page.fill("#reply-body", "凭证号 3201，退回截图见附件")
    page.set_input_files("#reply-files", str(shot))
    page.click("[data-reply-form] button:has-text('回复')")
    page.wait_for_selector(".alert:has-text('已回复，工单已恢复处理')")
    assert page.locator("[data-status]").inner_text() == "处理中"
    timeline = page.locator("[data-timeline]")
    assert timeline.locator("[data-event=requester_reply]").count() == 1
    assert timeline.locator("[data-event=resumed]").count() == 1
    assert "退回截图.png" in timeline.locator("[data-event=attachment]").inner_text()
    assert "暂停计时" not in page.locator("[data-clock='解决']").inner_text()
    page.screenshot(path=str(SHOTS / "desk-requester-reply.png"), full_page=True)
    asked.refresh_from_db()
    assert asked.status == flow.IN_PROGRESS and asked.attachments.get().name == "退回截图.png"
