"""A day's inspection in Debian's Chromium: the engineer goes from the monitoring board to the inspection calendar,
generates the due runs, opens today's run, sees the automated probe's result, ticks the manual item (模拟业务操作)
with a note and a screenshot, finishes with a conclusion and downloads the 巡检报告. Screenshot: /tmp/inspect.png.

The plan follows the 7×24 calendar at 00:00 so that today's slot has come whenever the test runs."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from django.utils import timezone

from caiwei.accounts.roles import Role
from caiwei.inspections.models import Plan, PlanItem, Run, RunItem
from caiwei.web.tests.test_browser import browser, log_in, page  # noqa: F401  (fixtures reused)
from caiwei.web.tests.test_walkthrough import BROKEN_BUTTONS, COLLECT_TEXT, english_in

from .conftest import png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def problems(tab) -> list[str]:
    return [
        *(f"英文：{w}" for w in english_in(tab.evaluate(COLLECT_TEXT))),
        *(f"按钮文字折行：{b}" for b in tab.evaluate(BROKEN_BUTTONS)),
    ]


def test_a_days_inspection(live_server, page, make_user, regions, http_service, tmp_path, settings):  # noqa: F811
    from caiwei.monitor.models import Item

    settings.MEDIA_ROOT = tmp_path / "media"
    engineer = make_user("w_engineer", Role.ENGINEER, regions=("152500000",))
    probe = Item.objects.create(
        region=regions["152500000"],
        system="国库集中支付",
        name="支付前置服务",
        kind="http",
        config={"url": f"{http_service}/ok", "expect_status": "200"},
        timeout_s=5,
    )
    plan = Plan.objects.create(
        region=regions["152500000"],
        system="国库集中支付",
        name="支付系统日常巡检",
        valid_from=date(2020, 1, 1),
        calendar="always",
    )
    auto = PlanItem.objects.create(plan=plan, name="服务可用性", kind="probe", times="00:00", position=0)
    auto.monitor_items.set([probe])
    PlanItem.objects.create(
        plan=plan,
        name="模拟业务操作",
        kind="manual",
        times="00:00",
        position=1,
        instructions="录入一笔测试凭证并撤销",
    )
    shot = tmp_path / "支付成功.png"
    shot.write_bytes(png_bytes())

    log_in(page, live_server, engineer.username)
    page.goto(f"{live_server.url}/monitor/")
    page.click("#inspection-calendar")
    page.wait_for_selector("#week")
    assert problems(page) == []
    page.click("#tick")
    page.wait_for_selector("[data-message], .alert", timeout=30_000)
    assert problems(page) == []
    page.screenshot(path="/tmp/inspect-calendar.png", full_page=True)
    today = page.locator(".card.border-primary")
    link = today.locator("a[data-run]").first
    assert "支付系统日常巡检" in link.inner_text()
    link.click()
    page.wait_for_url(re.compile(r"/inspections/runs/\d+/$"))
    run = Run.objects.get(pk=int(re.search(r"/runs/(\d+)/$", page.url).group(1)))
    assert (
        timezone.localtime(run.slot).date() == timezone.localdate()
    )  # today's, not one of the caught-up days
    # the automated item has its result already (the worker probed the local HTTP service)
    probe_card = page.locator("[data-kind=probe]")
    assert probe_card.get_attribute("data-result") == "ok"
    assert "支付前置服务" in probe_card.inner_text() and "正常" in probe_card.inner_text()
    assert page.locator("[data-count=pending]").inner_text() == "1"
    assert page.locator("#finish").is_disabled()
    assert problems(page) == []

    manual = page.locator("[data-kind=manual]")
    manual.locator("select[name=result]").select_option("ok")
    manual.locator("textarea[name=notes]").fill("录入测试凭证并撤销，均正常")
    manual.locator("input[type=file]").set_input_files(str(shot))
    manual.locator("[data-record]").click()
    page.wait_for_selector("[data-kind=manual][data-result=ok]")
    assert "支付成功.png" in page.locator("[data-kind=manual]").inner_text()
    assert page.locator("[data-count=pending]").inner_text() == "0"
    page.fill("#conclusion", "本次巡检各项正常。")
    page.click("#finish")
    page.wait_for_selector("[data-run-status=done]")
    run.refresh_from_db()
    assert run.status == Run.Status.DONE and run.conclusion == "本次巡检各项正常。"
    item = run.items.get(kind="manual")
    assert item.result == RunItem.Result.OK and item.checked_by == engineer and item.shots.count() == 1
    assert problems(page) == []
    page.screenshot(path="/tmp/inspect.png", full_page=True)

    with page.expect_download() as info:
        page.click("#report")
    data = Path(info.value.path()).read_bytes()
    document = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    for text in (
        "巡检报告",
        "一、巡检范围",
        "支付前置服务",
        "录入测试凭证并撤销，均正常",
        "本次巡检各项正常。",
        "六、签字确认",
    ):
        assert text in document, text
    assert info.value.suggested_filename.endswith(".docx")

    # the plan page (items with their frequency) reads in Chinese too
    page.goto(f"{live_server.url}/inspections/plans/{plan.pk}/")
    assert "每个工作日 00:00" in page.locator("#items").inner_text()
    assert problems(page) == []
    page.screenshot(path="/tmp/inspect-plan.png", full_page=True)
