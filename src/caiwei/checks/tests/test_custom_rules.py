"""本地规则: validation on save, versions with diff and rollback, approval by the PM, files, and runs."""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from django.core.exceptions import PermissionDenied, ValidationError

from caiwei.accounts.roles import Role
from caiwei.audit.models import AuditEvent
from caiwei.checks import custom, services
from caiwei.checks import custom_services as cs
from caiwei.checks.custom_models import LocalRule, LocalRuleVersion
from caiwei.checks.engine import shipped_packs
from caiwei.checks.models import CheckSchedule, Target, TargetDatabase

BASE = """id: L-TEST-001
title: 测试规则
severity: 一般
module: 指标管理
key: [bgt_id]
sql: |
  {sql}
"""
GOOD = BASE.format(sql="SELECT b.bgt_id, b.amount FROM ba_bgt_info b WHERE b.amount < 0")


def problems(text: str) -> str:
    with pytest.raises(custom.RuleInvalid) as info:
        custom.check_text(text)
    return str(info.value)


# --- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("INSERT INTO ba_bgt_info (bgt_id) VALUES ('x')", "不能含 INSERT"),
        ("UPDATE ba_bgt_info SET amount = 0", "不能含 UPDATE"),
        ("DELETE FROM ba_bgt_info", "不能含 DELETE"),
        ("DROP TABLE ba_bgt_info", "不能含 DROP"),
        ("SELECT bgt_id INTO stolen FROM ba_bgt_info", "SELECT … INTO"),
        ("SELECT bgt_id FROM ba_bgt_info; SELECT 1", "只能有一条 SELECT 语句"),
        ("WITH x AS (DELETE FROM ba_bgt_info RETURNING bgt_id) SELECT bgt_id FROM x", "不能含 DELETE"),
        ("SELECT bgt_id, pg_read_file('/etc/passwd') AS f FROM ba_bgt_info", "不允许的函数 PG_READ_FILE"),
        ("SELECT bgt_id, load_file('/etc/passwd') AS f FROM ba_bgt_info", "不允许的函数 LOAD_FILE"),
        ("SELECT bgt_id, sleep(10) AS f FROM ba_bgt_info", "不允许的函数 SLEEP"),
        ("SELECT bgt_id, pg_sleep(10) AS f FROM ba_bgt_info", "不允许的函数 PG_SLEEP"),
        ("SELECT t.bgt_id FROM dblink('host=x', 'SELECT 1') AS t(bgt_id text)", "不允许的函数 DBLINK"),
        ("SELECT bgt_id FROM salaries_secret", "未知的表 salaries_secret"),
        ("SELECT bgt_id FROM pg_catalog.pg_authid", "不能指定模式或库名"),
        ("SELECT amount FROM ba_bgt_info", "主键或金额列 bgt_id 不在查询结果的列中"),
        ("SELECT * FROM ba_bgt_info", "不能用 *"),
        ("SELECT bgt_id FROM ba_bgt_info FOR UPDATE", "FOR UPDATE"),
        ("SELECT bgt_id FROM ba_bgt_info WHERE amount > :limit", "参数 limit 未在 params 中声明"),
        ("SELEC bgt_id FROM ba_bgt_info", "SQL 无法解析"),
    ],
)
def test_validation_refuses(sql, expected):
    message = problems(BASE.format(sql=sql))
    assert expected in message
    assert "字段 sql" in message  # names the field (and its line)


def test_validation_names_fields_and_lines():
    assert "缺少字段 severity、字段 module" in problems("id: L-X\ntitle: t\nkey: [a]\nsql: SELECT 1 AS a\n")
    assert "第 2 行第" in problems("id: L-X\ntitle: [unclosed\n")
    assert "第 8 行 未知字段 owner" in problems(GOOD + "owner: me\n")
    assert "字段 severity" in problems(GOOD.replace("一般", "很急"))
    assert "字段 id" in problems(GOOD.replace("L-TEST-001", "1 坏编号"))


def test_every_shipped_rule_validates_as_a_local_copy():
    """The allowlist and the table check accept what the shipped rules do (else they are wrong)."""
    rules = [r for pack in shipped_packs().values() for r in pack.rules]
    assert len(rules) >= 41
    for shipped in rules:
        rule = custom.check_text(custom.copy_of_shipped(shipped.id, f"L-{shipped.id}"))
        assert rule.id == f"L-{shipped.id}" and rule.sql == shipped.sql and rule.key == shipped.key


# --- versions and approval -----------------------------------------------------------------------------------------


@pytest.fixture
def people(make_user):
    league, county, other = "152500000", "152501000", "152502000"
    return {
        "engineer": make_user("c_engineer", Role.ENGINEER, regions=(league,)),
        "engineer2": make_user("c_engineer2", Role.ENGINEER, regions=(league,)),
        "pm": make_user("c_pm", Role.PROJECT_MANAGER, regions=(league,)),
        "pm_author": make_user("c_pm_author", Role.PROJECT_MANAGER, regions=(league,)),
        "pm_other": make_user("c_pm_other", Role.PROJECT_MANAGER, regions=(other,)),
        "engineer_county": make_user("c_engineer_county", Role.ENGINEER, regions=(county,)),
        "finance": make_user("c_finance", Role.FINANCE_STAFF, regions=(league,)),
    }


def test_edit_diff_and_rollback(people):
    engineer = people["engineer"]
    v1 = cs.create_rule(engineer, GOOD)
    rule = v1.rule
    assert (v1.number, v1.status, v1.author, rule.region.code) == (1, "draft", engineer, "152500000")
    v2 = cs.save_version(engineer, rule, GOOD.replace("b.amount < 0", "b.amount <= 0"))
    assert v2.number == 2
    lines = cs.diff(v1, v2)
    assert "-  SELECT b.bgt_id, b.amount FROM ba_bgt_info b WHERE b.amount < 0" in lines
    assert "+  SELECT b.bgt_id, b.amount FROM ba_bgt_info b WHERE b.amount <= 0" in lines
    v3 = cs.rollback(engineer, rule, 1)
    assert v3.number == 3 and v3.text == v1.text and v3.note == "回滚到第 1 版"
    with pytest.raises(ValidationError, match="内容与当前版本相同"):
        cs.save_version(engineer, rule, v3.text)
    with pytest.raises(ValidationError, match="规则编号不能修改"):
        cs.save_version(engineer, rule, GOOD.replace("L-TEST-001", "L-TEST-002"))
    with pytest.raises(ValidationError, match="不能含 DELETE"):
        cs.save_version(engineer, rule, BASE.format(sql="DELETE FROM ba_bgt_info"))
    assert rule.versions.count() == 3
    v1.text = "changed"
    with pytest.raises(ValueError, match="不可修改"):
        v1.save()
    audited = AuditEvent.objects.filter(object_type="checks.localrule", object_id=str(rule.pk))
    assert [e.after["action"] for e in audited.order_by("seq") if "action" in (e.after or {})] == [
        "新建",
        "编辑",
        "回滚到第 1 版",
    ]


def test_ids_may_not_shadow_shipped_rules_or_each_other(people):
    engineer = people["engineer"]
    with pytest.raises(ValidationError, match="出厂规则的编号"):
        cs.create_rule(engineer, GOOD.replace("L-TEST-001", "QUOTA-001"))
    cs.create_rule(engineer, GOOD)
    with pytest.raises(ValidationError, match="已存在"):
        cs.create_rule(people["engineer2"], GOOD)


def test_approval_rules(people):
    engineer, pm = people["engineer"], people["pm"]
    v1 = cs.create_rule(engineer, GOOD)
    with pytest.raises(ValidationError, match="不在待审批状态"):
        cs.decide(pm, v1, approve=True)
    cs.submit(engineer, v1)
    with pytest.raises(PermissionDenied, match="只有项目经理"):
        cs.decide(people["engineer2"], v1, approve=True)
    with pytest.raises(PermissionDenied):
        cs.decide(people["pm_other"], v1, approve=True)  # another county's PM does not even see it
    assert not cs.visible_local_rules(people["pm_other"]).filter(pk=v1.rule_id).exists()
    with pytest.raises(PermissionDenied):
        cs.decide(people["finance"], v1, approve=True)
    with pytest.raises(ValidationError, match="驳回须填写理由"):
        cs.decide(pm, v1, approve=False)
    cs.decide(pm, v1, approve=False, reason="条件写反了")
    v1.refresh_from_db()
    assert v1.status == "rejected" and v1.reason == "条件写反了" and v1.decided_by == pm
    cs.submit(engineer, v1)  # resubmitted after a rejection
    cs.decide(pm, v1, approve=True)
    v1.rule.refresh_from_db()
    assert v1.rule.approved == v1


def test_author_cannot_approve_own_version(people):
    author = people["pm_author"]
    v1 = cs.create_rule(author, GOOD)
    cs.submit(author, v1)
    with pytest.raises(PermissionDenied, match="不能审批自己"):
        cs.decide(author, v1, approve=True)
    cs.decide(people["pm"], v1, approve=True)


def test_shipped_copy_records_its_origin(people, monkeypatch):
    v1 = cs.copy_shipped(people["engineer"], "QUOTA-001")
    rule = v1.rule
    assert rule.rule_id == "L-QUOTA-001" and rule.source_rule == "QUOTA-001" and len(rule.source_hash) == 64
    assert not cs.shipped_changed(rule)
    monkeypatch.setattr(custom, "shipped_hash", lambda rule_id: "0" * 64)  # a release changed the original
    assert cs.shipped_changed(rule)
    assert rule.latest.text == v1.text  # the local copy is untouched


# --- files --------------------------------------------------------------------------------------------------------


def test_export_import_round_trip(people):
    engineer = people["engineer"]
    v1 = cs.create_rule(engineer, GOOD)
    exported = cs.export_text(v1)
    meta = yaml.safe_load(exported)["version"]
    assert meta["number"] == 1 and meta["author"] == "c_engineer" and meta["rule"] == "L-TEST-001"
    changed = exported.replace("b.amount < 0", "b.amount < -1")
    v2 = cs.import_text(engineer, changed)
    assert v2.rule == v1.rule and v2.number == 2 and v2.status == "draft" and v2.note == "导入"
    v3 = cs.import_text(engineer, exported)
    assert v3.text == v1.text  # export → import gives back the same rule
    LocalRule.objects.all().delete()
    fresh = cs.import_text(engineer, exported)
    assert fresh.number == 1 and fresh.text == v1.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: L-X\ntitle: [unclosed\n", "第 2 行"),
        (GOOD.replace("severity: 一般\n", ""), "缺少字段 severity"),
        (GOOD.replace("key: [bgt_id]", "key: [nope]"), "nope"),
        ("- just\n- a list\n", "键值对"),
        ("", "规则文件为空"),
    ],
)
def test_bad_file_writes_nothing(people, text, expected):
    with pytest.raises(ValidationError) as info:
        cs.import_text(people["engineer"], text)
    assert expected in "；".join(info.value.messages)
    assert LocalRuleVersion.objects.count() == 0 and LocalRule.objects.count() == 0


# --- runs ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path, settings, regions):
    from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    path = tmp_path / "finance.sqlite3"
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{path}"
    generate(f"sqlite:///{path}", GenerateSpec(payments=1500, seed=3, faults=parse_faults("all=1")))
    return path


def _database(path, regions, sandbox: bool, name: str):
    target = Target.objects.create(
        name=name, system="国库集中支付", region=regions["152501000"], is_sandbox=sandbox
    )
    return TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(path), as_of=date(2026, 12, 31)
    )


def _approved_copy(people, shipped_id="QUOTA-001"):
    v1 = cs.copy_shipped(people["engineer"], shipped_id)
    cs.submit(people["engineer"], v1)
    cs.decide(people["pm"], v1, approve=True)
    return v1


def test_dry_run_on_the_sandbox(sandbox, people):
    result = cs.check_and_try(people["engineer"], custom.copy_of_shipped("QUOTA-001", "L-Q1"))
    assert result["ok"] and result["dry_run"]["count"] >= 1 and result["dry_run"]["seconds"] >= 0
    bad = cs.check_and_try(
        people["engineer"], BASE.format(sql="SELECT bgt_id, pg_sleep(1) AS s FROM ba_bgt_info")
    )
    assert not bad["ok"] and "PG_SLEEP" in bad["problems"][0]
    with pytest.raises(PermissionDenied):
        cs.check_and_try(people["finance"], GOOD)


def test_run_includes_an_approved_local_rule(sandbox, people, regions):
    database = _database(sandbox, regions, sandbox=True, name="演练")
    _approved_copy(people)
    run = services.start_run(people["engineer"], database, "all", inline=True)
    results = {r.rule_id: r for r in run.results.all()}
    assert results["L-QUOTA-001"].count == results["QUOTA-001"].count >= 1
    assert results["L-QUOTA-001"].pack == "local" and run.rules_total == len(results)
    assert sorted(results["L-QUOTA-001"].keys) == sorted(results["QUOTA-001"].keys)
    only_local = services.start_run(people["engineer"], database, "local", inline=True)
    assert [r.rule_id for r in only_local.results.all()] == ["L-QUOTA-001"]


def test_production_runs_only_the_approved_version(sandbox, people, regions):
    production = _database(sandbox, regions, sandbox=False, name="生产")
    v1 = _approved_copy(people)
    # A newer draft that would find every indicator: production keeps running the approved version.
    loose = v1.text.replace("WHERE b.pay_app_amt > b.amount", "WHERE 1 = 1")
    cs.save_version(people["engineer"], v1.rule, loose)
    run = services.start_run(people["engineer"], production, "local", inline=True)
    approved_count = run.results.get(rule_id="L-QUOTA-001").count
    shipped = services.start_run(people["engineer"], production, "quota", inline=True)
    assert approved_count == shipped.results.get(rule_id="QUOTA-001").count
    # The sandbox tries the newest version; a never-approved rule never runs on production.
    sandbox_db = _database(sandbox, regions, sandbox=True, name="演练")
    tried = services.start_run(people["engineer"], sandbox_db, "local", inline=True)
    assert tried.results.get(rule_id="L-QUOTA-001").count > approved_count
    cs.create_rule(people["engineer"], GOOD)
    again = services.start_run(people["engineer"], production, "local", inline=True)
    assert [r.rule_id for r in again.results.all()] == ["L-QUOTA-001"]


def test_rules_of_another_region_do_not_run(sandbox, people, regions):
    v1 = cs.create_rule(people["engineer_county"], GOOD)  # county 152501000
    cs.submit(people["engineer_county"], v1)
    cs.decide(people["pm"], v1, approve=True)  # the league's PM sees the county
    other = Target.objects.create(name="他县", system="国库集中支付", region=regions["152502000"])
    database = TargetDatabase.objects.create(
        target=other, name="业务库", dialect="sqlite", database=str(sandbox), as_of=date(2026, 12, 31)
    )
    assert cs.local_rules_for(database) == []


def test_schedule_with_local_pack(sandbox, people, regions):
    database = _database(sandbox, regions, sandbox=False, name="生产")
    _approved_copy(people)
    schedule = services.save_schedule(
        people["pm"], CheckSchedule(database=database, cron="0 2 * * *", packs="local")
    )
    assert schedule.pk


def test_results_record_the_version_that_ran(sandbox, people, regions, client_for, token_for):
    """Which version of a local rule ran is kept with its result, shown on the pages and given by the API."""
    engineer = people["engineer"]
    production = _database(sandbox, regions, sandbox=False, name="生产")
    sandbox_db = _database(sandbox, regions, sandbox=True, name="演练")
    v1 = _approved_copy(people)
    v2 = cs.save_version(engineer, v1.rule, v1.text.replace("WHERE b.pay_app_amt > b.amount", "WHERE 1 = 1"))
    on_production = services.start_run(engineer, production, "all", inline=True)
    assert on_production.results.get(rule_id="L-QUOTA-001").rule_version == v1.number == 1
    assert on_production.results.get(rule_id="QUOTA-001").rule_version is None  # a shipped rule has none
    tried = services.start_run(engineer, sandbox_db, "local", inline=True).results.get(rule_id="L-QUOTA-001")
    assert tried.rule_version == v2.number == 2
    cs.submit(engineer, v2)
    cs.decide(people["pm"], v2, approve=True)
    again = services.start_run(engineer, production, "local", inline=True).results.get(rule_id="L-QUOTA-001")
    assert again.rule_version == 2 and again.count > on_production.results.get(rule_id="L-QUOTA-001").count

    client = client_for(engineer)
    page = client.get(f"/checks/results/{tried.pk}/").content.decode()
    assert "本次运行的是本地规则 L-QUOTA-001 的第 2 版" in page
    assert f'href="/checks/local/{v1.rule.pk}/"' in page
    assert "处理建议：" in page  # the advice of the version that ran (a local rule is no shipped rule)
    run_page = client.get(f"/checks/runs/{on_production.pk}/").content.decode()
    assert "data-rule-version>第 1 版</div>" in run_page
    auth = token_for(engineer)
    listed = client.get(f"/api/checks/runs/{on_production.pk}", **auth).json()["results"]
    assert {r["rule"]: r["version"] for r in listed if r["rule"] in ("L-QUOTA-001", "QUOTA-001")} == {
        "L-QUOTA-001": 1,
        "QUOTA-001": None,
    }
    assert client.get(f"/api/checks/results/{tried.pk}", **auth).json()["version"] == 2


def test_dry_run_page_shows_amounts_with_two_decimals(sandbox, people, client_for):
    """SQLite returns an amount as a float (1234.5): the dry run shows it as money, 1,234.50, like the result page."""
    import re
    from decimal import Decimal

    from django.urls import reverse

    text = BASE.format(
        sql="SELECT b.bgt_id, ROUND(b.amount, 0) + 0.5 AS amount FROM ba_bgt_info b WHERE b.amount > 0"
    ).replace("key: [bgt_id]", "key: [bgt_id]\namount: amount")
    raw = cs.check_and_try(people["engineer"], text)["dry_run"]
    assert raw["sample"] and all(isinstance(r["amount"], float) for r in raw["sample"])
    assert any(len(str(r["amount"]).split(".")[1]) < 2 for r in raw["sample"])  # 1234.5: one decimal only
    page = client_for(people["engineer"]).post(reverse("checks:local_rule_validate"), {"text": text})
    html = page.content.decode()
    cells = re.findall(r"<td[^>]*data-money>([^<]*)</td>", html)
    assert cells == [f"{Decimal(str(r['amount'])):,.2f}" for r in raw["sample"]]
    assert all(re.fullmatch(r"-?[\d,]+\.\d{2}", c) for c in cells)
    heads = re.findall(r'<th[^>]*data-column="(\w+)">([^<]*)<', html)
    assert [c for c, _ in heads] == ["bgt_id", "amount"] and all(
        re.search(r"[\u4e00-\u9fff]", h) for _, h in heads
    )
    shown = re.search(r"data-dry-amount>([^<]*)<", html).group(1)
    assert shown == f"{Decimal(raw['amount']):,.2f}"
