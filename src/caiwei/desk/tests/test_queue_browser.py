"""The queue at 1440×900 in Debian's Chromium: no column narrower than two characters, long titles cut with a tooltip."""

import pytest

from caiwei.desk import services
from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIELDS = {
    "system": "国库集中支付",
    "ticket_type": "故障",
    "description": "凭证状态一直为“发送中”",
    "requester_name": "张老师",
    "requester_org": "锡林浩特市教育局",
}


def test_queue_columns_keep_two_characters_at_1440(live_server, users, regions, page):  # noqa: F811
    pm = users["pm"]
    long_title = "国库集中支付系统在月末批量生成支付凭证时提示签章服务超时，预算单位无法提交用款申请" * 2
    services.assign(
        pm,
        services.create_ticket(
            pm,
            region=regions["152502000"],
            severity="重大",
            title=long_title,
            **FIELDS,
        ),
        users["engineer"],
    )
    for i in range(8):
        services.create_ticket(
            pm,
            region=regions[("152501000", "152502000", "152522000")[i % 3]],
            severity=("一般", "紧急")[i % 2],
            title=f"指标额度与用款计划不一致（第 {i} 笔）",
            **FIELDS,
        )
    log_in(page, live_server, users["agent"].username)
    page.goto(f"{live_server.url}/desk/")
    page.wait_for_selector("table[data-queue] tbody tr[data-ticket]")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "desk-queue-1440.png"), full_page=True)
    widths = page.evaluate(
        """() => {
        const probe = document.createElement('span');
        probe.className = 'small';
        probe.textContent = '中中';
        document.querySelector('table[data-queue]').appendChild(probe);
        const two = probe.getBoundingClientRect().width;
        const line = probe.getBoundingClientRect().height;
        probe.remove();
        const head = [...document.querySelectorAll('table[data-queue] thead th')];
        const cells = [...document.querySelectorAll('table[data-queue] tbody tr[data-ticket] td')];
        const rows = [...document.querySelectorAll('table[data-queue] tbody tr[data-ticket]')];
        return {
            two,
            line,
            columns: head.map(th => [th.textContent, th.getBoundingClientRect().width]),
            cells: cells.map(td => [td.textContent.trim().slice(0, 12), td.getBoundingClientRect().width]),
            rows: rows.map(tr => [tr.dataset.ticket, tr.getBoundingClientRect().height]),
            table: document.querySelector('table[data-queue]').getBoundingClientRect().width,
        };
    }"""
    )
    assert widths["two"] > 10
    narrow = [(name, w) for name, w in widths["columns"] if w < widths["two"]]
    assert not narrow, f"列宽不足两个字：{narrow}（两个字 {widths['two']:.1f}px）"
    narrow_cells = [(text, w) for text, w in widths["cells"] if w < widths["two"]]
    assert not narrow_cells, narrow_cells
    # Nothing wraps one character per line: every row stays within two lines of text.
    tall = [(number, h) for number, h in widths["rows"] if h > 2.5 * widths["line"]]
    assert not tall, f"行高超过两行（每行 {widths['line']:.1f}px）：{tall}"
    assert widths["table"] <= 1440
    # The long title is cut on the page and whole in its tooltip.
    cut = page.evaluate(
        """() => {
        const td = [...document.querySelectorAll('td.cw-q-title')].find(c => c.title.startsWith('国库集中支付系统'));
        return [td.title.length, td.scrollWidth > td.clientWidth, getComputedStyle(td).textOverflow];
    }"""
    )
    assert cut == [len(long_title), True, "ellipsis"]
    # Saved views are links that keep the filters in the address.
    page.click("a[data-view=mine]")
    page.wait_for_url("**/desk/?view=mine")
    page.goto(f"{live_server.url}/desk/?view=group")
    assert page.locator("a[data-view=group]").get_attribute("aria-current") == "page"
