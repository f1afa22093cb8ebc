"""In Debian's Chromium: an engineer backs up a registered SQLite target, restores a changed table by range (the diff
grid), runs a DR drill and sees it pass; every page is Chinese. Screenshots: var/screenshots/dataops-*.png."""

import os
from datetime import date

import pytest

from caiwei.accounts.roles import Role
from caiwei.dataops.tests.test_backups_engine import fill, make_source, vouchers
from caiwei.web.tests.test_browser import browser, log_in, page  # noqa: F401 (fixtures)
from caiwei.web.tests.test_walkthrough import COLLECT_TEXT, english_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_backup_restore_and_drill_in_the_browser(live_server, page, regions, make_user, settings, tmp_path):  # noqa: F811
    from caiwei.checks.models import Target, TargetDatabase

    shots = settings.VAR_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    settings.VAR_DIR = tmp_path / "var"
    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    make_user("t_engineer", Role.ENGINEER, regions=("152500000",))
    conn = make_source("sqlite", tmp_path, "browser")
    fill(conn, 60)
    target = Target.objects.create(name="预算执行系统", system="国库集中支付", region=regions["152500000"])
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=conn.database, as_of=date(2026, 12, 31)
    )
    log_in(page, live_server, "t_engineer")
    texts = []

    def read_page():
        page.wait_for_load_state()
        texts.extend(page.evaluate(COLLECT_TEXT))

    page.goto(f"{live_server.url}/data/backups/")
    page.select_option("#id_database", str(database.pk))
    page.click("button:has-text('立即备份')")
    page.wait_for_selector("#backup-body[data-status=done]")
    read_page()
    page.screenshot(path=str(shots / "dataops-backup.png"), full_page=True)
    e = conn.engine()
    with e.begin() as c:
        c.execute(vouchers.update().where(vouchers.c.id.in_([1, 4])).values(payee="改了"))
        c.execute(vouchers.delete().where(vouchers.c.id == 7))
    e.dispose()
    page.select_option("#id_table", "vouchers")
    page.fill("#id_condition", "region = '152502000'")
    page.click("button:has-text('恢复到临时库并比对')")
    page.wait_for_selector("#restore-body[data-status=ready]")
    assert page.locator("#diff tbody tr").count() == 3
    page.check("[data-select-all]")
    assert page.locator("#diff input[name=row]:checked").count() == 3
    read_page()
    page.screenshot(path=str(shots / "dataops-restore.png"), full_page=True)
    page.goto(f"{live_server.url}/data/backups/drills/")
    page.select_option("#id_database", str(database.pk))
    page.click("button:has-text('开始演练')")
    page.wait_for_selector("#drill-body[data-status=passed]", timeout=60000)
    read_page()
    page.screenshot(path=str(shots / "dataops-drill.png"), full_page=True)
    assert page.locator("#report-link").count() == 1
    page.goto(f"{live_server.url}/data/backups/drills/")
    read_page()
    assert english_in(texts) == []
