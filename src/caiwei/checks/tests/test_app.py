"""Data checks as a user meets them: targets with sealed passwords, runs from the page, the API and the command,
results with masked samples and the diff, tickets from findings, schedules, Excel export."""

import json
import sqlite3
from datetime import date, timedelta
from io import BytesIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from openpyxl import load_workbook

from caiwei.checks import services, vault
from caiwei.checks.engine import select_rules
from caiwei.checks.models import CheckRun, CheckSchedule, RuleResult, Target, TargetDatabase
from caiwei.conftest import PASSWORD, scratch_db
from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

APP_DB = scratch_db("caiwei_checks_app")
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{APP_DB}"


@pytest.fixture
def sandbox(tmp_path):
    path = tmp_path / "finance.sqlite3"
    manifest = generate(
        f"sqlite:///{path}", GenerateSpec(payments=3000, seed=5, faults=parse_faults("all=1"))
    )
    return path, manifest


@pytest.fixture
def target_db(sandbox, regions, users, settings):
    path, _ = sandbox
    settings.CAIWEI_SQLITE_TARGET_DIR = str(path.parent)  # SQLite targets live in the configured directory
    target = Target.objects.create(name="演练财政库", system="国库集中支付", region=regions["152500000"])
    return TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(path), as_of=date(2026, 12, 31)
    )


def result(run, rule_id) -> RuleResult:
    return run.results.get(rule_id=rule_id)


def test_run_from_the_page_then_diff_after_the_data_changes(target_db, sandbox, users, client_for):
    path, manifest = sandbox
    client = client_for(users["engineer"])
    response = client.post("/checks/run/", {"database": target_db.pk, "sample": "on"})
    run = CheckRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/checks/runs/{run.pk}/"
    assert run.status == "done" and run.rules_total == len(select_rules("all")) and run.rules_error == 0
    plate = result(run, "ASSET-003")
    assert [k[0] for k in plate.keys] == manifest.keys("asset_vehicle_no_plate", "asset_card")
    assert plate.previous is None and plate.new_count is None
    page = client.get(f"/checks/runs/{run.pk}/").content.decode()
    assert "车辆缺少号牌" in page and "导出 Excel" in page

    # Someone fixes the plate; another vehicle loses its plate.
    fixed = plate.keys[0][0]
    with sqlite3.connect(path) as conn:
        other = conn.execute(
            "SELECT asset_id FROM asset_card WHERE asset_class_code = '304' AND plate_no IS NOT NULL LIMIT 1"
        ).fetchone()[0]
        conn.execute("UPDATE asset_card SET plate_no = '演A12345' WHERE asset_id = ?", (fixed,))
        conn.execute("UPDATE asset_card SET plate_no = NULL WHERE asset_id = ?", (other,))
    client.post("/checks/run/", {"database": target_db.pk, "sample": "on", "packs": ["assets"]})
    second = CheckRun.objects.first()
    assert second.pk != run.pk and second.rules_total == 6
    again = result(second, "ASSET-003")
    assert (again.new_count, again.still_count, again.resolved_count) == (1, 0, 1)
    assert again.new_keys == [[other]] and again.resolved_keys == [[fixed]] and again.previous == plate
    unchanged = result(second, "ASSET-002")
    assert (unchanged.new_count, unchanged.still_count, unchanged.resolved_count) == (0, 2, 0)

    detail = client.get(f"/checks/results/{again.pk}/").content.decode()
    assert "新增 <strong>1</strong>" in detail and "按行驶证补录号牌" in detail
    assert '号牌<small class="text-muted fw-normal">（plate_no）</small>' in detail and "asset_card" in detail
    amount = client.get(f"/checks/results/{result(run, 'BIZ-005').pk}/").content.decode()
    assert (
        '凭证金额<small class="text-muted fw-normal">（pay_amt）' in amount
    )  # the rule's own heading for the column
    assert services.trend(again) == [
        {"run": run.pk, "at": timezone.localtime(run.created_at).strftime("%m-%d %H:%M"), "count": 1},
        {"run": second.pk, "at": timezone.localtime(second.created_at).strftime("%m-%d %H:%M"), "count": 1},
    ]


def test_rule_parameters_from_the_page(target_db, users, client_for):
    client = client_for(users["engineer"])
    response = client.post(
        "/checks/run/", {"database": target_db.pk, "packs": ["business"], "params": "BIZ-001.cutoff=400"}
    )
    run = CheckRun.objects.get()
    assert run.params == {"BIZ-001": {"cutoff": 400}} and result(run, "BIZ-001").count == 0
    assert result(run, "BIZ-003").count == 1  # the others keep their defaults
    assert "BIZ-001.cutoff=400" in client.get(response["Location"]).content.decode()
    bad = client.post("/checks/run/", {"database": target_db.pk, "params": "BIZ-001.days=3"}, follow=True)
    assert "没有参数 days" in bad.content.decode() and CheckRun.objects.count() == 1


def test_a_finding_opens_a_ticket_linked_both_ways(target_db, users, client_for):
    client = client_for(users["engineer"])
    client.post("/checks/run/", {"database": target_db.pk, "sample": "on", "packs": ["quota"]})
    overspent = result(CheckRun.objects.get(), "QUOTA-001")
    response = client.post(f"/checks/results/{overspent.pk}/ticket/")
    overspent.refresh_from_db()
    ticket = overspent.ticket
    assert response.status_code == 302 and response["Location"] == f"/desk/{ticket.number}/"
    assert ticket.severity == "重大" and ticket.channel == "check" and ticket.system == "指标管理"
    assert ticket.region == target_db.target.region and "QUOTA-001" in ticket.description
    assert overspent.sql in ticket.description
    assert f"/checks/results/{overspent.pk}/" in client.get(f"/desk/{ticket.number}/").content.decode()
    client.post(f"/checks/results/{overspent.pk}/ticket/")
    assert type(ticket).objects.filter(channel="check").count() == 1  # one ticket per result
    clean = result(CheckRun.objects.get(), "QUOTA-002")
    with pytest.raises(ValidationError, match="没有发现问题"):
        services.open_ticket(users["engineer"], clean)
    with pytest.raises(Exception, match="无权限"):
        services.open_ticket(users["approver"], overspent)


def test_excel_export_lists_summary_samples_and_keys(target_db, users, client_for):
    client = client_for(users["finance"])
    client.post(
        "/checks/run/",
        {"database": target_db.pk, "sample": "on", "packs": ["duplicate_payment", "personnel"]},
    )
    run = CheckRun.objects.get()
    response = client.get(f"/checks/runs/{run.pk}/export.xlsx")
    book = load_workbook(BytesIO(response.content))
    assert book.sheetnames == ["检查汇总", "问题样本（已脱敏）", "问题数据主键"]
    summary = list(book["检查汇总"].values)
    assert summary[1][:5] == ("规则编号", "规则", "规则包", "严重程度", "问题条数")
    assert {row[0]: row[4] for row in summary[2:]} == {
        "DUP-001": 2,
        "DUP-002": 0,
        "DUP-003": 1,  # near_duplicate_payment once: its first shape, the payee's name in full-width letters
        "DUP-004": 0,
        "PERSON-001": 2,
        "PERSON-002": 1,
        "PERSON-003": 1,
    }
    keys = list(book["问题数据主键"].values)
    assert len(keys) == 1 + 2 + 1 + 2 + 1 + 1
    samples = [v for row in book["问题样本（已脱敏）"].values for v in row if v]
    assert any(v == "身份证号（iden_no）" for v in samples)
    assert not any(isinstance(v, str) and len(v) == 18 and v.isdigit() for v in samples)  # ID numbers masked
    # The sample headings come in the page's order: the rule's key, then its evidence, then the rest.
    from caiwei.checks.engine import shipped_rule
    from caiwei.checks.present import heading, sample_columns

    rows = list(book["问题样本（已脱敏）"].values)
    title = next(i for i, row in enumerate(rows) if str(row[0]).startswith("DUP-001"))
    result = run.results.get(rule_id="DUP-001")
    rule = shipped_rule("DUP-001")
    expected = [heading(c["name"], rule.labels) for c in sample_columns(rule, result.columns)]
    assert [v for v in rows[title + 1] if v] == expected and expected[0].endswith(f"（{rule.key[0]}）")


def test_api_registers_a_postgresql_target_with_a_sealed_password(regions, users, token_for, client_for):
    from sqlalchemy import create_engine, text

    admin = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {APP_DB}"))
        conn.execute(text(f"CREATE DATABASE {APP_DB}"))
    admin.dispose()
    generate(
        PG_URL,
        GenerateSpec(payments=2000, seed=9, faults=parse_faults("duplicate_payment=1,asset_no_duplicate=1")),
    )
    client, auth = client_for(users["pm"]), token_for(users["pm"])
    target = client.post(
        "/api/checks/targets",
        {"name": "盟本级国库支付", "system": "国库集中支付", "region": "152500000"},
        content_type="application/json",
        **auth,
    ).json()
    db = client.post(
        f"/api/checks/targets/{target['id']}/databases",
        {
            "name": "业务库",
            "dialect": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": APP_DB,
            "username": "postgres",
            "password": "S3cret-口令",
            "as_of": "2026-12-31",
        },
        content_type="application/json",
        **auth,
    ).json()
    assert "has_password" in db, db
    assert (
        db["has_password"] is True
        and "S3cret" not in json.dumps(db)
        and db["url"].endswith(f"@127.0.0.1:5432/{APP_DB}")
    )
    stored = TargetDatabase.objects.get(pk=db["id"])
    assert stored.secret.startswith("sm4gcm:") and "S3cret" not in stored.secret
    assert stored.unsealed_password() == "S3cret-口令"
    with pytest.raises(vault.VaultError):  # sealed for its connection: it does not open for any other
        vault.unseal(stored.secret)
    changed = client.patch(
        f"/api/checks/databases/{db['id']}", {"timeout_s": 120}, content_type="application/json", **auth
    ).json()
    assert changed["timeout_s"] == 120 and changed["has_password"] is True
    assert TargetDatabase.objects.get(pk=db["id"]).unsealed_password() == "S3cret-口令"  # kept when not given
    bad = client.patch(
        f"/api/checks/databases/{db['id']}",
        {"mapping": {"tables": {"x": "a b"}}},
        content_type="application/json",
        **auth,
    )
    assert bad.status_code == 400 and "不合法" in bad.json()["detail"]
    tested = client.post(f"/api/checks/databases/{db['id']}/test", **auth).json()
    assert tested["ok"] is True and "逻辑表" in tested["message"] and "PostgreSQL" in tested["message"]
    run = client.post(
        "/api/checks/runs",
        {"database": db["id"], "packs": "duplicate_payment,assets"},
        content_type="application/json",
        **auth,
    ).json()
    assert run["status"] == "done" and run["findings"] == 4
    counts = {r["rule"]: r["count"] for r in run["results"]}
    assert counts["DUP-001"] == 2 and counts["ASSET-002"] == 2
    dup = next(r for r in run["results"] if r["rule"] == "DUP-001")
    full = client.get(f"/api/checks/results/{dup['id']}", **auth).json()
    assert len(full["keys"]) == 2 and "%(" not in full["sql"] and "pay_voucher" in full["sql"]
    assert all("*" in row["payee_acct_no"] for row in full["sample"])
    # No body: the rule's severity, nobody assigned.
    ticket = client.post(
        f"/api/checks/results/{dup['id']}/ticket", content_type="application/json", **auth
    ).json()
    assert ticket["severity"] == "重大"
    # The API chooses severity and assignee as the page does; an engineer of another region is refused.
    asset = next(r for r in run["results"] if r["rule"] == "ASSET-002")
    url = f"/api/checks/results/{asset['id']}/ticket"
    refused = client.post(url, {"assignee": "nobody"}, content_type="application/json", **auth)
    assert refused.status_code == 400 and "二线工程师" in refused.json()["detail"]
    bad = client.post(url, {"severity": "很急"}, content_type="application/json", **auth)
    assert bad.status_code == 400 and "严重程度" in bad.json()["detail"]
    chosen = client.post(
        url,
        {"severity": "紧急", "assignee": users["engineer"].username},
        content_type="application/json",
        **auth,
    ).json()
    from caiwei.desk.models import Ticket

    opened = Ticket.objects.get(number=chosen["ticket"])
    assert (opened.severity, opened.assignee) == ("紧急", users["engineer"])
    # A bank user is not a reader of checks; a finance user of a county does not see the league's target.
    assert client_for(users["bank"]).get("/api/checks/targets").status_code == 403
    county = users["bank"].__class__.objects.get(username="t_unit")
    assert county.can("checks.view") is False
    assert (
        client.get("/api/checks/targets", **token_for(users["finance"])).json()[0]["name"] == "盟本级国库支付"
    )


def test_region_scoping_hides_other_regions_targets(target_db, make_user, client_for):
    from caiwei.accounts.roles import Role

    county = make_user("t_county_fin", Role.FINANCE_STAFF, regions=("152501000",))
    assert client_for(county).get("/api/checks/targets").json() == []
    assert client_for(county).get(f"/checks/databases/{target_db.pk}/").status_code == 403


def test_unreachable_database_fails_the_run_with_a_reason(regions, users):
    target = Target.objects.create(name="不可达", system="预算编制", region=regions["152500000"])
    database = TargetDatabase(
        target=target, name="主库", dialect="postgresql", host="127.0.0.1", port=1, database="x", username="u"
    )
    database = services.save_database(users["pm"], database, "pw")
    ok, message = services.test_connection(users["pm"], database)
    assert ok is False and message
    run = services.start_run(users["engineer"], database, "quota")
    assert run.status == "failed" and run.message
    with pytest.raises(ValidationError, match="未知的规则包"):
        services.start_run(users["engineer"], database, "nonsense")


def test_schedules_fire_once_when_due(target_db, users):
    with pytest.raises(ValidationError, match="cron 表达式"):
        services.save_schedule(users["pm"], CheckSchedule(database=target_db, cron="every day"))
    schedule = services.save_schedule(
        users["pm"], CheckSchedule(database=target_db, cron="0 2 * * *", packs="assets")
    )
    local = timezone.localtime(schedule.next_run_at)
    assert (local.hour, local.minute) == (2, 0)
    assert services.fire_schedules(now=schedule.next_run_at - timedelta(minutes=1)) == 0
    assert services.fire_schedules(now=schedule.next_run_at + timedelta(seconds=30)) == 1
    run = CheckRun.objects.get()
    assert (
        run.schedule == schedule and run.status == "done" and run.rules_total == 6 and run.created_by is None
    )
    schedule.refresh_from_db()
    assert schedule.last_run == run and schedule.next_run_at > run.created_at
    assert services.fire_schedules(now=run.created_at + timedelta(seconds=30)) == 0


def test_schedules_are_disabled_and_deleted_from_the_page(target_db, users, client_for):
    schedule = services.save_schedule(users["pm"], CheckSchedule(database=target_db, cron="30 1 * * 1-5"))
    client = client_for(users["pm"])
    page = client.get(f"/checks/databases/{target_db.pk}/").content.decode()
    assert "30 1 * * 1-5" in page and "停用" in page
    client.post(f"/checks/schedules/{schedule.pk}/", {"action": "disable"})
    schedule.refresh_from_db()
    assert schedule.enabled is False and schedule.next_run_at is None
    assert services.fire_schedules(now=timezone.now() + timedelta(days=3)) == 0
    client.post(f"/checks/schedules/{schedule.pk}/", {"action": "enable"})
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_run_at > timezone.now()
    assert (
        client_for(users["finance"])
        .post(f"/checks/schedules/{schedule.pk}/", {"action": "delete"})
        .status_code
        == 403
    )
    client.post(f"/checks/schedules/{schedule.pk}/", {"action": "bogus"})
    assert CheckSchedule.objects.get().enabled  # an unknown action changes nothing
    client.post(f"/checks/schedules/{schedule.pk}/", {"action": "delete"})
    assert not CheckSchedule.objects.exists()


def test_schedules_through_the_api(target_db, users, client_for, token_for):
    client, auth = client_for(users["pm"]), token_for(users["pm"])
    created = client.post(
        f"/api/checks/databases/{target_db.pk}/schedules",
        {"cron": "0 3 * * *", "packs": "assets"},
        content_type="application/json",
        **auth,
    ).json()
    listed = client.get("/api/checks/targets", **auth).json()[0]["databases"][0]["schedules"]
    [item] = listed
    assert item["id"] == created["id"] and item["cron"] == "0 3 * * *" and item["enabled"] is True
    from datetime import datetime

    assert datetime.fromisoformat(item["next_run_at"]) == datetime.fromisoformat(created["next_run_at"])
    url = f"/api/checks/schedules/{created['id']}"
    client.post(url, {"action": "disable"}, content_type="application/json", **auth)
    assert CheckSchedule.objects.get().enabled is False
    assert client.post(url, {"action": "drop"}, content_type="application/json", **auth).status_code == 422
    client.post(url, {"action": "delete"}, content_type="application/json", **auth)
    assert not CheckSchedule.objects.exists()


def test_command_runs_ad_hoc_against_a_url(sandbox, tmp_path, capsys):
    path, manifest = sandbox
    out = tmp_path / "result.json"
    call_command(
        "checks",
        "run",
        "--db",
        f"sqlite:///{path}",
        "--pack",
        "business,assets",
        "--as-of",
        "2026-12-31",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    rules = {r["id"]: r for r in report["rules"]}
    assert len(rules) == 14 and report["as_of"] == "2026-12-31"
    assert [k[0] for k in rules["BIZ-003"]["keys"]] == manifest.keys(
        "voucher_sign_failed", "pay_voucher_bill"
    )
    assert "共 14 条规则" in capsys.readouterr().out
    call_command(
        "checks",
        "run",
        "--db",
        f"sqlite:///{path}",
        "--pack",
        "business",
        "--as-of",
        "2026-12-31",
        "--param",
        "BIZ-003.cutoff=400",
        "--json",
        str(out),
    )
    assert {r["id"]: r["count"] for r in json.loads(out.read_text(encoding="utf-8"))["rules"]}["BIZ-003"] == 0
    with pytest.raises(CommandError, match="未知的规则包"):
        call_command("checks", "run", "--db", f"sqlite:///{path}", "--pack", "nope")
    with pytest.raises(CommandError, match="日期"):
        call_command("checks", "run", "--db", f"sqlite:///{path}", "--as-of", "31/12/2026")


def test_command_runs_a_registered_target_as_an_actor(target_db, users, monkeypatch, capsys):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    call_command("checks", "run", "--target", "演练财政库", "--actor", "t_engineer", "--pack", "personnel")
    run = CheckRun.objects.get()
    assert run.created_by == users["engineer"] and run.findings == 4
    with pytest.raises(CommandError, match="无权限"):
        call_command("checks", "run", "--target", "演练财政库", "--actor", "t_approver")


def test_vault_seals_with_a_fresh_nonce_and_detects_tampering():
    a, b = vault.seal("口令-1"), vault.seal("口令-1")
    assert a != b and vault.unseal(a) == vault.unseal(b) == "口令-1"
    broken = a[:-4] + ("AAAA" if not a.endswith("AAAA") else "BBBB")
    with pytest.raises(vault.VaultError):
        vault.unseal(broken)
    assert vault.seal("") == "" and vault.unseal("") == ""


def test_database_form_seals_the_password_and_keeps_it_when_left_blank(regions, users, client_for):
    client = client_for(users["engineer"])
    client.post(
        "/checks/targets/new/",
        {"name": "旗县预算一体化", "system": "预算编制", "region": regions["152501000"].pk},
    )
    target = Target.objects.get(name="旗县预算一体化")
    fields = {
        "name": "业务库",
        "dialect": "postgresql",
        "host": "127.0.0.1",
        "port": "5432",
        "database": "postgres",
        "username": "postgres",
        "read_only": "on",
        "timeout_s": "60",
        "mapping_text": "",
    }
    response = client.post(
        f"/checks/targets/{target.pk}/databases/new/", {**fields, "password": "口令-Abc-123"}, follow=True
    )
    database = target.databases.get()
    assert database.secret.startswith("sm4gcm:") and database.unsealed_password() == "口令-Abc-123"
    assert "口令-Abc-123" not in response.content.decode() and "连接成功" in response.content.decode()
    edit = client.get(f"/checks/databases/{database.pk}/").content.decode()
    assert "口令-Abc-123" not in edit and "已设置（加密保存，不显示）" in edit
    client.post(f"/checks/databases/{database.pk}/", {**fields, "timeout_s": "90", "password": ""})
    database.refresh_from_db()
    assert database.timeout_s == 90 and database.unsealed_password() == "口令-Abc-123"
    bad = client.post(
        f"/checks/databases/{database.pk}/", {**fields, "mapping_text": '{"tables": {"pay_voucher": "a b"}}'}
    )
    assert "映射中的表名或列名不合法" in bad.content.decode()


def test_the_loaded_sandbox_is_registered_and_its_run_compared_with_the_manifest(
    regions, users, client_for, settings, tmp_path
):
    import os

    from caiwei.sandbox.service import load_default, manifest_path

    settings.VAR_DIR = tmp_path
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{tmp_path / 'sandbox.sqlite3'}"
    load_default(payments=4000, seed=2)
    database = services.register_sandbox()
    run = database.runs.get()
    assert database.target.is_sandbox and database.target.region.code == "152500000"
    assert database.as_of == date(2026, 12, 31) and run.status == "done" and run.findings > 0
    assert services.register_sandbox().runs.count() == 1  # once only
    page = client_for(users["finance"]).get(f"/checks/runs/{run.pk}/").content.decode()
    assert "与演练库标准答案对照" in page and "没有规则找出清单之外的数据" in page
    report = services.sandbox_comparison(run)
    from caiwei.checks.truth import FAULT_RULES

    # One row per data fault type of the sandbox (the others are for reconciliation and permission audits).
    assert {r["fault"] for r in report["faults"]} == set(FAULT_RULES) and report["stray"] == {}
    assert all(r["precision"] == r["recall"] == 1.0 for r in report["faults"] if r["expected"])
    later = run.started_at.timestamp() + 60  # the sandbox regenerated after the run: no comparison
    os.utime(manifest_path(), (later, later))
    assert services.sandbox_comparison(run) is None
