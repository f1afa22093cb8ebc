"""The reconciliation walk-through in Debian's Chromium (issue 12 acceptance): an engineer uploads one day's files
of two sandbox banks (each with its own format), sees the day's breaks in Chinese, opens the amount difference the
sandbox's manifest planted, raises a ticket from it and resolves it with a reason; a month run over the sandbox's
files follows, the bank's user and a finance user sign the month, and the month is read-only after.

Screenshots land in var/screenshots (recon-*.png)."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from caiwei.audit.models import AuditEvent
from caiwei.recon.formats import shipped
from caiwei.recon.models import BankFormat, ReconBreak, ReconRun, ReconSignoff
from caiwei.recon.sources import sandbox_files
from caiwei.recon.statements import month_end as end_of_month
from caiwei.web.tests.test_browser import SHOTS, browser, log_in, page  # noqa: F401  (fixtures reused)
from caiwei.web.tests.test_walkthrough import BROKEN_BUTTONS, COLLECT_TEXT, NARROW_CELLS, english_in

from .conftest import set_bank

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def planted(recon) -> tuple[str, str, date, list[tuple]]:
    """The sandbox's amount fault: its voucher, the bank whose daily file carries it, that day, and the daily files
    of that day (path, format code, bank) — its bank's and the other banks' of the same day."""
    var = recon["var"]
    manifest = json.loads((var / "sandbox-manifest.json").read_text(encoding="utf-8"))
    voucher = next(
        k
        for f in manifest["faults"]
        if f["type"] == "bank_amount_mismatch"
        for k in f["rows"]["pay_voucher_bill"]
    )
    files = [
        (path, next(c for c, d in shipped().items() if d == definition), bank)
        for path, definition, bank in sandbox_files(
            var / "sandbox-bank-files", f"sqlite:///{var / 'sandbox.sqlite3'}"
        )
    ]
    # The planted line is in a text layout (CSV or fixed width) the bytes of which name the voucher.
    path, _, bank = next(
        (p, c, b) for p, c, b in files if c != "excel" and voucher.encode() in p.read_bytes()
    )
    day = re.search(r"(\d{8})", path.name).group(1)
    same_day = [(p, c, b) for p, c, b in files if day in p.name]
    others = [f for f in same_day if f[2] != bank]
    chosen = [next(f for f in same_day if f[2] == bank), *others[:1]]
    return voucher, bank, date(int(day[:4]), int(day[4:6]), int(day[6:])), chosen


def page_problems(tab) -> list[str]:
    """The walk-through's checks of a page (caiwei/web/tests/test_walkthrough.py): English words outside code,
    table cells too narrow for their text, short button labels broken over two lines."""
    return [
        *(f"英文：{w}" for w in english_in(tab.evaluate(COLLECT_TEXT))),
        *(f"列太窄：{c}" for c in tab.evaluate(NARROW_CELLS)),
        *(f"按钮文字折行：{b}" for b in tab.evaluate(BROKEN_BUTTONS)),
    ]


def shot(tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"recon-{name}.png"), full_page=True)


def test_upload_a_day_resolve_a_break_with_a_ticket_and_sign_the_month(live_server, recon, page, browser):  # noqa: F811
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod

    ensure_defaults(BusinessCalendar, KeyPeriod)  # a transactional test starts from an emptied database
    people, region, database = recon["people"], recon["region"], recon["database"]
    voucher, bank, day, files = planted(recon)
    assert len(files) == 2 and files[0][2] == bank and files[1][2] != bank
    page.on("dialog", lambda dialog: dialog.accept())  # the sign buttons ask for confirmation

    # 1. The engineer uploads the day's files of two banks, each with its format and bank code.
    log_in(page, live_server, people["engineer"].username)
    page.click(".navbar >> text=银行对账")
    page.wait_for_selector("#run-form")
    assert "发起对账" in page.locator("#run-form").inner_text()
    page.select_option("#id_region", str(region.pk))
    page.select_option("#id_database", str(database.pk))
    page.fill("#id_period_start", day.isoformat())
    page.fill("#id_period_end", day.isoformat())
    page.fill("#id_as_of", day.isoformat())
    for i, (path, code, file_bank) in enumerate(files):
        page.set_input_files(f"#id_file_{i}", str(path))
        page.select_option(f"#id_format_{i}", str(BankFormat.objects.get(code=code).pk))
        page.fill(f"#id_bank_{i}", file_bank)
    assert page_problems(page) == []
    shot(page, "1-upload")
    page.click("#run-form button:has-text('开始对账')")
    page.wait_for_url(re.compile(r"/recon/runs/\d+/$"))
    page.wait_for_selector("#run-body[data-run-status=done]", timeout=60_000)
    run = ReconRun.objects.latest("pk")
    assert run.status == ReconRun.Status.DONE and (run.period_start, run.period_end) == (day, day)
    assert [i["bank"] for i in run.sources["inputs"]] == [b for _, _, b in files]
    assert [i["format"] for i in run.sources["inputs"]] == [c for _, c, _ in files]
    assert run.sources["refused"] == [] and run.sources["files"] == 2
    # Both files read; the planted difference is listed under its class, in Chinese.
    assert page.locator("#sources [data-refused]").count() == 0
    assert page.locator("#sources").inner_text().count("已读入") == 2
    amount = page.locator("[data-kind=amount]")
    assert "金额不符" in amount.locator("h2").inner_text()
    assert "银行金额与凭证金额不一致" in amount.inner_text()
    brk = ReconBreak.objects.get(last_run=run, kind="amount", vouchers=[voucher])
    assert brk.bank_code == bank and brk.book_amount != brk.bank_amount
    # Vouchers of earlier days were paid in files not uploaded, and the day's own are in transit: none is 仅我方有.
    assert not ReconBreak.objects.filter(last_run=run, kind="book_only").exists()
    breaks = int(page.locator("[data-count=breaks]").inner_text())
    assert breaks == ReconBreak.objects.filter(last_run=run).count() >= 1
    assert page_problems(page) == []
    shot(page, "2-run")

    # 2. The break: a ticket raised from it, then resolved with a reason.
    page.click(f"tr[data-break='{brk.pk}'] a")
    page.wait_for_selector("#ticket-form")
    assert (
        "金额不符" in page.locator("h1").inner_text()
        and voucher in page.locator("[data-vouchers]").inner_text()
    )
    assert page.locator("[data-state]").first.inner_text() == "未解决"
    page.click("#ticket-form button:has-text('由差异开工单')")
    page.wait_for_selector(".alert:has-text('已开工单')")
    brk.refresh_from_db()
    assert brk.ticket is not None and brk.ticket.number in page.locator("[data-ticket]").inner_text()
    assert voucher in brk.ticket.description and brk.ticket.region == region
    reason = "银行按错误金额入账，已与银行核实并于次日冲正补付"
    page.fill("#id_reason", reason)
    page.click("#resolve-form button:has-text('已解决')")
    page.wait_for_selector(".alert:has-text('已标为已解决')")
    assert page.locator("h1 [data-state]").inner_text() == "已解决"
    assert reason in page.locator("[data-resolution]").inner_text()
    assert page_problems(page) == []
    shot(page, "3-break-resolved")
    brk.refresh_from_db()
    assert brk.state == ReconBreak.State.RESOLVED and brk.resolution == reason
    assert brk.resolved_by == people["engineer"] and brk.ticket.number
    events = AuditEvent.objects.filter(object_type="recon.reconbreak", object_id=str(brk.pk))
    actions = [e.detail["action"] for e in events.order_by("seq") if "action" in e.detail]
    assert actions == ["由差异开工单", "标为已解决"]
    assert events.get(detail__action="由差异开工单").after["ticket"] == brk.ticket.number
    assert events.get(detail__action="标为已解决").actor == people["engineer"].username

    # 3. Signing needs a run over the whole month: the engineer runs the month on the sandbox's files.
    month = day.replace(day=1)
    month_end = end_of_month(month)
    page.goto(f"{live_server.url}/recon/")
    page.select_option("#id_region", str(region.pk))
    page.select_option("#id_database", str(database.pk))
    page.fill("#id_period_start", month.isoformat())
    page.fill("#id_period_end", month_end.isoformat())
    page.fill("#id_as_of", month_end.isoformat())
    page.check("#id_use_sandbox")
    # the sandbox's ~700 daily files of every bank are read (huey is immediate here: the run is done in the request)
    with page.expect_navigation(url=re.compile(r"/recon/runs/\d+/$"), timeout=150_000):
        page.click("#run-form button:has-text('开始对账')", no_wait_after=True)
    page.wait_for_selector("#run-body[data-run-status=done]")
    month_run = ReconRun.objects.latest("pk")
    assert month_run.status == ReconRun.Status.DONE and month_run.pk != run.pk
    brk.refresh_from_db()
    assert brk.state == ReconBreak.State.RESOLVED and brk.resolution == reason  # a resolution stays

    # 4. The bank's user signs the month of their bank…
    bank_user = set_bank(people["bank"], bank)
    signer = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    signer.on("dialog", lambda dialog: dialog.accept())
    log_in(signer, live_server, bank_user.username)
    key = month.isoformat()[:7]
    signer.goto(f"{live_server.url}/recon/statements/runs/{month_run.pk}/?bank={bank}&month={key}")
    assert (
        signer.locator("#overview tbody tr").count()
        == signer.locator(f"#overview tr[data-bank='{bank}']").count()
    )
    assert signer.locator("#signoff [data-state]").inner_text() == "待签认"
    assert signer.locator("#balance").count() == 1  # the 余额调节表 they sign
    assert page_problems(signer) == []
    shot(signer, "4-statement-bank")
    signer.click("[data-sign=bank] button")
    signer.wait_for_selector(".alert:has-text('已签认')")
    assert signer.locator("#signoff [data-state]").inner_text() == "银行已签"
    signoff = ReconSignoff.objects.get(region=region, bank_code=bank, month=month)
    assert signoff.state == ReconSignoff.State.BANK and signoff.bank_user == bank_user

    # …then a finance user: the month is signed and read-only.
    finance = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    finance.on("dialog", lambda dialog: dialog.accept())
    log_in(finance, live_server, people["finance"].username)
    finance.goto(f"{live_server.url}/recon/statements/runs/{month_run.pk}/?bank={bank}&month={key}")
    finance.click("[data-sign=finance] button")
    finance.wait_for_selector(".alert:has-text('该月已只读')")
    assert finance.locator("#signoff [data-state]").inner_text() == "已签认"
    assert (
        finance.locator(f"#overview tr[data-bank='{bank}'][data-month='{key}'] [data-state]").inner_text()
        == "已签认"
    )
    assert finance.locator("[data-sign]").count() == 0
    assert page_problems(finance) == []
    shot(finance, "5-signed")
    signoff.refresh_from_db()
    assert signoff.state == ReconSignoff.State.SIGNED and signoff.finance_user == people["finance"]
    assert signoff.run == month_run and signoff.figures
    signed = AuditEvent.objects.filter(
        object_type="recon.reconsignoff", object_id=str(signoff.pk), detail__event="对账签认"
    )
    assert sorted(e.detail["side"] for e in signed) == ["财政", "银行"]

    # The month's breaks of that bank are read-only now: a comment or a resolution is refused, in Chinese.
    still_open = ReconBreak.objects.filter(
        region=region, bank_code=bank, day__gte=month, day__lte=month_end, state=ReconBreak.State.OPEN
    ).first()
    target = still_open or brk
    page.goto(f"{live_server.url}/recon/breaks/{target.pk}/")
    page.fill("#comment-form textarea", "签认后补充说明")
    page.click("#comment-form button")
    page.wait_for_selector(".alert-danger:has-text('该期间只读')")
    assert "不能" in page.locator(".alert-danger").inner_text()
    if still_open is not None:
        page.fill("#id_reason", "签认后改动")
        page.click("#resolve-form button:has-text('已解决')")
        page.wait_for_selector(".alert-danger:has-text('该期间只读')")
        still_open.refresh_from_db()
        assert still_open.state == ReconBreak.State.OPEN and still_open.resolution == ""
    assert not target.comments.exists()
    shot(page, "6-read-only")
    # And the month cannot be run again: refused on the form, no run written.
    page.goto(f"{live_server.url}/recon/")
    page.select_option("#id_region", str(region.pk))
    page.select_option("#id_database", str(database.pk))
    page.fill("#id_period_start", day.isoformat())
    page.fill("#id_period_end", day.isoformat())
    page.check("#id_use_sandbox")
    runs = ReconRun.objects.count()
    page.click("#run-form button:has-text('开始对账')")
    page.wait_for_selector(".alert-danger:has-text('不能重新对账')")
    assert page.url == f"{live_server.url}/recon/" and ReconRun.objects.count() == runs
