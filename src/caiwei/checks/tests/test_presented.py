"""Data-check results as a finance user reads them (issue 10, item 7): evidence columns first, the money a duplicate
costs, which packs a run covered, a run page that shows progress at once, Chinese column headings, dates typed
as people write them, cron and connections in words, tickets that carry the failing keys."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from croniter import croniter
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from caiwei.checks import limits, present, services
from caiwei.checks.engine import find_rule, select_rules, shipped_packs
from caiwei.checks.forms import DatabaseForm, RunForm
from caiwei.checks.models import CheckRun, CheckSchedule, TargetDatabase
from caiwei.checks.runner import Options, run_rules
from caiwei.checks.tests.test_app import sandbox, target_db  # noqa: F401  (fixtures)
from caiwei.sandbox.schema import metadata

AS_OF = date(2026, 12, 31)
CJK = re.compile(r"[\u4e00-\u9fff]")


def headers(html: str) -> list[tuple[str, str]]:
    """(data-column, text) of each heading of the sample table."""
    table = html[html.index('id="sample"') :]
    table = table[: table.index("</thead>")]
    found = re.findall(r'<th[^>]*data-column="([^"]+)"[^>]*>(.*?)</th>', table, re.S)
    return [(name, re.sub(r"<[^>]+>", "", text)) for name, text in found]


@pytest.fixture
def full_run(target_db, users):  # noqa: F811
    return services.start_run(users["engineer"], target_db, "all", inline=True)


# --- a. evidence columns first ----------------------------------------------------------------------------------


def test_evidence_columns_follow_the_key_for_every_rule():
    for pack in shipped_packs().values():
        for rule in pack.rules:
            outputs = [c.lower() for c in rule.tree.named_selects]
            kinds = [c["kind"] for c in present.sample_columns(rule, outputs)]
            assert [c["name"] for c in present.sample_columns(rule, outputs)][: len(rule.key)] == list(
                rule.key
            )
            assert kinds == sorted(kinds, key=["key", "evidence", "other"].index), (
                rule.id
            )  # key, evidence, rest
            if rule.amount:
                assert rule.amount in [
                    c["name"] for c in present.sample_columns(rule, outputs) if c["kind"] != "other"
                ]
    dup = find_rule("DUP-001")
    names = [c["name"] for c in present.sample_columns(dup, [c.lower() for c in dup.tree.named_selects])]
    assert names[:5] == ["pay_app_id", "payee_acct_no", "pay_amt", "pay_app_date", "use_des"]


def test_result_page_shows_the_evidence_of_a_duplicate_first(full_run, users, client_for):
    dup = full_run.results.get(rule_id="DUP-001")
    page = client_for(users["finance"]).get(f"/checks/results/{dup.pk}/").content.decode()
    assert [name for name, _ in headers(page)][:5] == [
        "pay_app_id",
        "payee_acct_no",
        "pay_amt",
        "pay_app_date",
        "use_des",
    ]


# --- b. the money a duplicate costs -----------------------------------------------------------------------------


def _payment(pay_app_id: str, amount: str, account: str, **extra) -> dict:
    row = {
        "pay_app_id": pay_app_id,
        "pay_app_no": f"NO{pay_app_id}",
        "fiscal_year": 2026,
        "mof_div_code": "152500000",
        "agency_code": "101001",
        "bgt_id": "B1",
        "pro_code": "P1",
        "exp_func_code": "2010101",
        "gov_bgt_eco_code": "501",
        "dep_bgt_eco_code": "30201",
        "fund_type_code": "11",
        "pay_type_code": "1",
        "pay_app_date": date(2026, 6, 1),
        "pay_amt": Decimal(amount),
        "payer_acct_no": "1500000001",
        "payee_acct_no": account,
        "payee_acct_name": "某供应商",
        "payee_bank_name": "某银行",
        "use_des": "办公用品",
        "input_user_id": "u1",
        "audit_user_id": "u2",
    }
    return row | extra


@pytest.mark.parametrize("combine", [True, False])
@pytest.mark.parametrize("sample", [True, False])
def test_duplicate_payments_count_only_the_surplus_copies(tmp_path, combine, sample):
    """The rule: a group of n payments alike in account, amount, date and purpose owes one; n−1 are paid twice."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dup.sqlite3'}")
    metadata.create_all(engine)
    table = metadata.tables["pay_voucher"]
    rows = [_payment(f"A{i}", "100.00", "6222000011112222") for i in range(3)]  # 3 copies: 200.00 paid twice
    rows += [_payment(f"B{i}", "50.00", "6222000033334444") for i in range(2)]  # 2 copies: 50.00
    rows += [_payment("C0", "100.00", "6222000011112222", use_des="差旅费")]  # another purpose: not a copy
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    outcomes = run_rules(
        engine, select_rules("duplicate_payment"), Options(as_of=AS_OF, sample=sample, combine=combine)
    )
    dup = next(o for o in outcomes if o.rule.id == "DUP-001")
    assert dup.count == 5 and dup.error == ""
    assert Decimal(dup.amount) == Decimal("250.00")
    if sample:
        assert sorted(k[0] for k in dup.keys) == [
            "A0",
            "A1",
            "A2",
            "B0",
            "B1",
        ]  # what the rule finds is unchanged
        assert sum(Decimal(u["amount"]) for u in dup.units) == Decimal("250.00")
    assert find_rule("DUP-001").amount_label == "重复多付金额"


def test_result_page_names_the_duplicate_amount(full_run, users, client_for):
    dup = full_run.results.get(rule_id="DUP-001")
    page = client_for(users["finance"]).get(f"/checks/results/{dup.pk}/").content.decode()
    assert "<span data-amount-label>重复多付金额</span>" in page and "n−1" in page


# --- c. which packs a run covered -------------------------------------------------------------------------------


def test_a_partial_run_says_which_packs_it_ran_wherever_it_is_referenced(target_db, users, client_for):  # noqa: F811
    run = services.start_run(users["engineer"], target_db, "assets,duplicate_payment", inline=True)
    client = client_for(users["finance"])
    index = client.get("/checks/").content.decode()
    latest = index[index.index("data-latest-packs") :][:600]
    ran = len(select_rules("assets,duplicate_payment"))
    assert "部分检查" in latest and "资产数据体检、重复支付" in latest and f"{ran} 条规则" in latest
    for url in (f"/checks/runs/{run.pk}/", f"/checks/results/{run.results.first().pk}/"):
        page = client.get(url).content.decode()
        assert (
            f"部分检查（2/{len(shipped_packs())} 个规则包）" in page and "资产数据体检、重复支付" in page
        ), url
    whole = services.start_run(users["engineer"], target_db, "all", inline=True)
    page = client.get(f"/checks/runs/{whole.pk}/").content.decode()
    every = f"全部 {len(shipped_packs())} 个规则包，{len(select_rules('all'))} 条规则"
    assert every in page and 'data-partial="0"' in page


# --- d. the run page shows progress at once and polls quickly ---------------------------------------------------


def test_the_run_page_shows_progress_at_once_and_refreshes_within_a_second(target_db, users, client_for):  # noqa: F811
    run = CheckRun.objects.create(database=target_db, packs="all", as_of=AS_OF, rules_total=41)
    client = client_for(users["finance"])
    page = client.get(f"/checks/runs/{run.pk}/").content.decode()
    assert "data-progress" in page and "等待后台任务进程" in page and "41 条规则" in page
    every = re.search(r'hx-trigger="every (\d+)(ms|s)"', page)
    assert every and int(every[1]) * (1 if every[2] == "ms" else 1000) <= 500
    CheckRun.objects.filter(pk=run.pk).update(status="running", done=3, total=12)
    fragment = client.get(f"/checks/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "第 3 / 12 步" in fragment and "width: 25%" in fragment
    CheckRun.objects.filter(pk=run.pk).update(status="done")
    done = client.get(f"/checks/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done and "data-progress" not in done


# --- e. every sample heading in Chinese -------------------------------------------------------------------------


def test_every_output_column_of_every_rule_has_a_chinese_label():
    for pack in shipped_packs().values():
        for rule in pack.rules:
            for column in rule.tree.named_selects:
                label = present.column_label(column.lower(), rule.labels)
                assert label and CJK.search(label), (rule.id, column)
    for table in metadata.sorted_tables:  # and every column of the logical tables (DOMAIN.md)
        for column in table.columns:
            assert present.column_label(column.name), (table.name, column.name)


def test_every_sample_heading_of_the_sandbox_run_is_chinese(full_run, users, client_for):
    client = client_for(users["finance"])
    failing = list(full_run.results.filter(count__gt=0))
    assert len(failing) >= 20
    for result in failing:
        page = client.get(f"/checks/results/{result.pk}/").content.decode()
        found = headers(page)
        assert [n for n, _ in found] and "data-raw-column" not in page, result.rule_id
        for name, text in found:
            assert CJK.search(text) and name not in text, (result.rule_id, name, text)


# --- f. dates as people type them -------------------------------------------------------------------------------

SPELLINGS = (
    lambda d: d.isoformat(),
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    lambda d: f"{d.year}.{d.month}.{d.day}",
    lambda d: f"{d:%Y%m%d}",
    lambda d: f"{d.year}年{d.month}月{d.day}日",
)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(SPELLINGS))
def test_the_date_parser_reads_every_spelling(day, spell):
    assert limits.parse_date(spell(day), "固定检查日") == day
    assert limits.parse_date(f"  {spell(day)} ", "固定检查日") == day


@pytest.mark.parametrize(
    "text",
    [
        "2026/13/01",
        "2026-02-30",
        "20261332",
        "2026年2月30日",
        "31/12/2026",
        "明天",
        "2026-1231",
        "1999-12-31",
    ],
)
def test_the_date_parser_refuses_what_is_no_date_naming_the_field(text):
    with pytest.raises(ValidationError) as caught:
        limits.parse_date(text, "固定检查日")
    assert caught.value.messages[0].startswith("固定检查日：") and CJK.search(caught.value.messages[0][6:])


def test_the_as_of_field_keeps_2026_12_31_written_with_slashes(target_db):  # noqa: F811
    data = {
        "name": "业务库",
        "dialect": "sqlite",
        "database": target_db.database,
        "timeout_s": 300,
        "read_only": "on",
    }
    for text in ("2026/12/31", "2026.12.31", "20261231", "2026年12月31日"):
        form = DatabaseForm(data | {"as_of": text}, instance=TargetDatabase.objects.get(pk=target_db.pk))
        assert form.is_valid(), form.errors
        assert form.cleaned_data["as_of"] == date(2026, 12, 31)
    bad = DatabaseForm(data | {"as_of": "2026/12/32"}, instance=target_db)
    assert not bad.is_valid() and bad.errors["as_of"][0].startswith("固定检查日：")
    run = RunForm({"database": target_db.pk, "date_from": "2026/01/01", "date_to": "2026年3月31日"})
    run.fields["database"].queryset = TargetDatabase.objects.all()
    assert run.is_valid(), run.errors
    assert run.scope()["date_from"] == "2026-01-01" and run.scope()["date_to"] == "2026-03-31"


# --- g. cron and connections in words ---------------------------------------------------------------------------

CRON_WORDS = {
    "30 8 * * 1-5": "每个工作日 08:30",
    "0 2 1 * *": "每月1日 02:00",
    "0 2 * * *": "每天 02:00",
    "0 2 * * 0": "每周日 02:00",
    "0 3 * * 6,0": "每周六、周日 03:00",
    "15 0 * * 1,3,5": "每周一、周三、周五 00:15",
    "0 0 1 1,4,7,10 *": "每年1、4、7、10月1日 00:00",
    "0 8,12,18 * * *": "每天 08:00、12:00、18:00",
    "0 2 1-10 * *": "每月1日至10日 02:00",
    "0 2 1,15 * *": "每月1、15日 02:00",
    "*/15 9-17 * * 1-5": "每个工作日 9点至17点每 15 分钟",
    "0 */2 * * *": "每 2 小时的整点",
    "5 * * * *": "每小时第 5 分",
    "0 2 15 * 1": "每月15日以及每周一 02:00",
    "0 2 * 1-6 *": "每年1月至6月每天 02:00",
    "0 2 */2 * *": "每月从1日起每 2 天 02:00",
    "0 2 1 */3 *": "每 3 个月（从1月起）1日 02:00",
    "0 2 * * MON-FRI": "每个工作日 02:00",
    "0 2 L * *": "0 2 L * *（自定义）",
    "@daily": "@daily（自定义）",
}


@pytest.mark.parametrize("expression", sorted(CRON_WORDS))
def test_cron_in_words(expression):
    from caiwei.checks.describe import cron_text

    assert cron_text(expression) == CRON_WORDS[expression]


@pytest.mark.parametrize("expression", [e for e in sorted(CRON_WORDS) if "自定义" not in CRON_WORDS[e]])
def test_the_describer_reads_cron_as_croniter_fires_it(expression):
    """The describer's reading of each field matches croniter's next fire times (and nothing in between)."""
    from caiwei.checks.describe import cron_matches

    start = datetime(2026, 1, 1)
    fires = croniter(expression, start)
    moment = start
    for _ in range(40):
        nxt = fires.get_next(datetime)
        if nxt - moment <= timedelta(days=3):  # every minute in between is not a fire time
            probe = moment + timedelta(minutes=1)
            while probe < nxt:
                assert not cron_matches(expression, probe), (expression, probe)
                probe += timedelta(minutes=1)
        assert cron_matches(expression, nxt), (expression, nxt)
        moment = nxt


def test_connections_in_words_without_password_or_scheme(regions):
    from caiwei.checks.describe import connection_text

    target = services.Target.objects.create(name="一体化", system="国库集中支付", region=regions["152500000"])
    db = TargetDatabase(
        target=target, name="业务库", dialect="postgresql", host="127.0.0.1", port=5432, database="finance"
    )
    db.username = "ops"
    db.set_password("s3cret!")
    assert connection_text(db) == "PostgreSQL 数据库 127.0.0.1:5432/finance（用户 ops）"
    file = TargetDatabase(
        target=target, name="演练", dialect="sqlite", database="/srv/var/targets/finance.sqlite3"
    )
    assert connection_text(file) == "SQLite 数据库文件 finance.sqlite3"


def test_finance_staff_see_no_connection_string_and_no_raw_cron(full_run, target_db, users, client_for):  # noqa: F811
    CheckSchedule.objects.create(database=target_db, cron="30 8 * * 1-5", packs="all", sample=True)
    CheckSchedule.objects.create(database=target_db, cron="0 2 1 * *", packs="quota", sample=True)
    finance = client_for(users["finance"])
    pages = ["/checks/", f"/checks/runs/{full_run.pk}/", "/checks/rules/"]
    pages += [f"/checks/results/{r.pk}/" for r in full_run.results.filter(count__gt=0)[:5]]
    for url in pages:
        page = finance.get(url).content.decode()
        assert "://" not in page and "30 8 * * 1-5" not in page and "0 2 1 * *" not in page, url
    index = finance.get("/checks/").content.decode()
    assert "每个工作日 08:30" in index and "每月1日 02:00" in index and "SQLite 数据库文件" in index
    engineer = client_for(users["engineer"]).get("/checks/").content.decode()
    assert "sqlite:///" in engineer and "30 8 * * 1-5" in engineer  # technical details for targets.manage


# --- h. a ticket from a finding ---------------------------------------------------------------------------------


def test_a_ticket_from_a_finding_names_assignee_severity_and_failing_keys(
    full_run, users, make_user, client_for
):
    dup = full_run.results.get(rule_id="DUP-001")
    other = make_user("t_engineer_far", "engineer", regions=("152501000",))  # another region's engineer
    client = client_for(users["finance"])
    page = client.get(f"/checks/results/{dup.pk}/").content.decode()
    assert f'<option value="{users["engineer"].pk}">' in page and f'value="{other.pk}"' not in page
    refused = client.post(f"/checks/results/{dup.pk}/ticket/", {"assignee": other.pk, "severity": "一般"})
    assert refused.status_code == 302 and not services.RuleResult.objects.get(pk=dup.pk).ticket_id
    client.post(f"/checks/results/{dup.pk}/ticket/", {"assignee": users["engineer"].pk, "severity": "一般"})
    ticket = services.RuleResult.objects.get(pk=dup.pk).ticket
    assert ticket.assignee == users["engineer"] and ticket.severity == "一般"
    assert f"共 {dup.count} 条" in ticket.description
    for key in dup.keys:
        assert key[0] in ticket.description
    assert "重复多付金额" in ticket.description


def test_local_rules_are_a_choice_and_named_in_words():
    from caiwei.checks.custom import LOCAL_PACK, LOCAL_PACK_TITLE
    from caiwei.checks.describe import packs_text
    from caiwei.checks.forms import pack_choices

    assert LOCAL_PACK in [name for name, _ in pack_choices()]
    only = packs_text(LOCAL_PACK)
    assert only["titles"] == [LOCAL_PACK_TITLE] and LOCAL_PACK not in only["text"] and only["partial"]
    first = next(iter(shipped_packs()))
    both = packs_text(f"{first},{LOCAL_PACK}")
    assert both["titles"] == [shipped_packs()[first].title, LOCAL_PACK_TITLE] and both["rules"] == len(
        shipped_packs()[first].rules
    )
