"""查询台 through the platform: grants (by a project manager, per database and table, with a validity), the page and
the API running a query (masked, logged — refused ones too — and audited), export requests approved by another
person, column classification edits, the command line, and the link from a 数据查询 ticket."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from django.core.management import call_command
from django.utils import timezone

from caiwei.accounts.roles import Role
from caiwei.audit.models import AuditEvent
from caiwei.conftest import PASSWORD
from caiwei.dataops import services_console as services
from caiwei.dataops.models_console import QueryExport, QueryGrant, QueryLog
from caiwei.sandbox.generator import GenerateSpec, generate

LEAGUE, COUNTY = "152500000", "152502000"
TABLES = ["person_info", "pay_voucher", "pay_payee_info", "ele_agency"]


@pytest.fixture(scope="session")
def console_var(tmp_path_factory):
    var = tmp_path_factory.mktemp("console-var")
    generate(f"sqlite:///{var / 'sandbox.sqlite3'}", GenerateSpec(payments=200, seed=3))
    return var


@pytest.fixture
def qc(console_var, regions, make_user, settings):
    from caiwei.checks.models import Target, TargetDatabase

    settings.VAR_DIR = console_var
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{console_var / 'sandbox.sqlite3'}"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    target = Target.objects.create(
        name="演练库", system="国库集中支付", region=regions[LEAGUE], is_sandbox=True
    )
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(console_var / "sandbox.sqlite3")
    )
    people = {
        "pm": make_user("q_pm", Role.PROJECT_MANAGER, regions=(LEAGUE,)),
        "pm2": make_user("q_pm2", Role.PROJECT_MANAGER, regions=(LEAGUE,)),
        "engineer": make_user("q_engineer", Role.ENGINEER, regions=(LEAGUE,)),
        "finance": make_user("q_finance", Role.FINANCE_STAFF, regions=(LEAGUE,)),
        "approver": make_user("q_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,)),
        "agent": make_user("q_agent", Role.AGENT, regions=(LEAGUE,)),
        "county": make_user("q_county", Role.ENGINEER, Role.PROJECT_MANAGER, regions=(COUNTY,)),
    }
    engine = sa.create_engine(f"sqlite:///{console_var / 'sandbox.sqlite3'}")
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("SELECT iden_no FROM person_info"))}
        accounts = {r[0] for r in conn.execute(sa.text("SELECT payee_acct_no FROM pay_payee_info"))}
        names = {r[0] for r in conn.execute(sa.text("SELECT person_name FROM person_info"))}
    engine.dispose()
    return {"database": database, "people": people, "ids": ids, "accounts": accounts, "names": names}


def give(qc, who: str, tables=TABLES, **extra) -> QueryGrant:
    granter = qc["people"]["pm2" if who == "pm" else "pm"]
    fields = {"valid_until": timezone.now() + timedelta(days=30), "row_limit": 200, "timeout_s": 10} | extra
    return services.grant(granter, user=qc["people"][who], database=qc["database"], tables=tables, **fields)


def run_page(client, qc, sql: str, **extra):
    data = {"database": qc["database"].pk, "sql": sql} | extra
    return client.post("/data/query/run/", data, HTTP_HX_REQUEST="true")


def refused_for_grant(response) -> bool:
    """The page's answer when there is no valid grant: shown in place (htmx swaps only a 200), as a refusal."""
    html = response.content.decode()
    return response.status_code == 200 and 'id="refusal"' in html and "查询授权" in html


def no_secret_in(text: str, qc) -> bool:
    return not any(v in text for v in qc["ids"] | qc["accounts"])


def test_a_granted_engineer_runs_a_query_and_sees_it_masked_and_logged(qc, client_for):
    give(qc, "engineer")
    client = client_for(qc["people"]["engineer"])
    page = client.get("/data/query/")
    assert page.status_code == 200 and "person_info" in page.content.decode()
    response = run_page(client, qc, "SELECT person_id, iden_no, person_name FROM person_info")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="grid"' in html, html[:500]
    assert no_secret_in(html, qc) and not any(f">{n}<" in html for n in qc["names"])
    assert html.count('data-masked="1"') > 10
    log = QueryLog.objects.get()
    assert log.user == qc["people"]["engineer"] and log.masked_columns == ["iden_no", "person_name"]
    assert log.rows > 0 and not log.refusal
    assert AuditEvent.objects.filter(object_type__icontains="querylog", object_id=str(log.pk)).exists()


def test_a_refused_query_is_shown_in_chinese_and_logged(qc, client_for):
    give(qc, "engineer")
    client = client_for(qc["people"]["engineer"])
    for sql, word in (
        ("SELECT substr(iden_no, 1, 8) FROM person_info", "iden_no"),
        ("DELETE FROM person_info", "只读"),
        ("SELECT * FROM sys_user", "授权"),  # not in the grant
        ("SELECT person_id FROM person_info ORDER BY iden_no", "排序"),
    ):
        html = run_page(client, qc, sql).content.decode()
        assert 'id="refusal"' in html and word in html, (sql, html[:400])
    logs = QueryLog.objects.order_by("pk")
    assert logs.count() == 4 and all(log.refusal for log in logs)


def test_no_grant_expired_or_revoked_means_no_query(qc, client_for, token_for):
    engineer = qc["people"]["engineer"]
    client = client_for(engineer)
    assert "没有任何数据库的有效查询授权" in client.get("/data/query/").content.decode()
    assert refused_for_grant(run_page(client, qc, "SELECT 1"))
    plain = client.post("/data/query/run/", {"database": qc["database"].pk, "sql": "SELECT 1"})
    assert plain.status_code == 400 and "查询授权" in plain.content.decode()
    api = client.post(
        "/api/data/query/run",
        json.dumps({"database": qc["database"].pk, "sql": "SELECT 1"}),
        content_type="application/json",
        **token_for(engineer),
    )
    assert api.status_code == 400 and "查询授权" in api.json()["detail"]
    g = give(qc, "engineer")
    assert run_page(client, qc, "SELECT count(*) FROM ele_agency").status_code == 200
    services.revoke(qc["people"]["pm"], g)
    assert refused_for_grant(run_page(client, qc, "SELECT count(*) FROM ele_agency"))
    g = give(qc, "engineer")
    QueryGrant.objects.filter(pk=g.pk).update(valid_until=timezone.now() - timedelta(seconds=1))
    assert refused_for_grant(run_page(client, qc, "SELECT count(*) FROM ele_agency"))
    # another region's engineer and project manager never see the league's database
    county = client_for(qc["people"]["county"])
    assert (
        county.post("/data/query/grants/", {"user": engineer.pk, "database": qc["database"].pk}).status_code
        == 400
    )


def test_a_grant_is_refused_field_by_field_and_nothing_is_written(qc, client_for):
    client = client_for(qc["people"]["pm"])
    base = {
        "user": qc["people"]["engineer"].pk,
        "database": qc["database"].pk,
        "tables": ["person_info"],
        "valid_until": (timezone.localdate() + timedelta(days=10)).isoformat(),
        "row_limit": "100",
        "timeout_s": "30",
    }
    cases = (
        ({"user": qc["people"]["agent"].pk}, "不能使用查询台"),
        ({"tables": ["no_such_table"]}, "未知的逻辑表"),
        ({"tables": []}, "至少选择一张"),
        ({"valid_until": "2020-01-01"}, "晚于当前时间"),
        ({"valid_until": "明天"}, "有效期应为日期"),
        ({"row_limit": "0"}, "返回行数上限"),
        ({"timeout_s": "9999"}, "语句超时"),
    )
    for change, message in cases:
        response = client.post("/data/query/grants/", base | change)
        assert response.status_code == 400 and message in response.content.decode(), change
    assert QueryGrant.objects.count() == 0
    assert client.post("/data/query/grants/", base).status_code == 302
    assert QueryGrant.objects.get().tables == ["person_info"]
    own = base | {"user": qc["people"]["pm"].pk}
    assert "不能给自己授权" in client.post("/data/query/grants/", own).content.decode()
    # an engineer cannot grant
    assert client_for(qc["people"]["engineer"]).post("/data/query/grants/", base).status_code == 403


def test_the_row_limit_cuts_the_result_and_says_so(qc, client_for):
    give(qc, "engineer", row_limit=5)
    html = run_page(
        client_for(qc["people"]["engineer"]), qc, "SELECT person_id FROM person_info"
    ).content.decode()
    assert 'id="truncated"' in html and "结果已截断" in html and html.count("<tr>") == 6
    assert QueryLog.objects.get().truncated


def test_an_export_needs_another_persons_approval_and_escapes_formulas(qc, client_for):
    from openpyxl import load_workbook

    give(qc, "pm", tables=["person_info"])
    pm = qc["people"]["pm"]
    client = client_for(pm)
    sql = "SELECT '=1+1' AS f, '-2' AS g, '@x' AS h, '+3' AS i, iden_no FROM person_info"
    run_page(client, qc, sql)
    log = QueryLog.objects.get()
    assert client.post(f"/data/query/logs/{log.pk}/export/", {"reason": ""}).status_code == 302
    assert QueryExport.objects.count() == 0  # a reason is required
    client.post(f"/data/query/logs/{log.pk}/export/", {"reason": "核对人员信息"})
    export = QueryExport.objects.get()
    # not before approval, not by the requester, not by someone without the right
    assert client.get(f"/data/query/exports/{export.pk}/download/").status_code == 409
    client.post(f"/data/query/exports/{export.pk}/decide/", {"decision": "approve"})
    export.refresh_from_db()
    assert export.status == QueryExport.Status.PENDING
    engineer = client_for(qc["people"]["engineer"])
    assert (
        engineer.post(f"/data/query/exports/{export.pk}/decide/", {"decision": "approve"}).status_code == 403
    )
    approver = client_for(qc["people"]["approver"])
    approver.post(f"/data/query/exports/{export.pk}/decide/", {"decision": "approve", "note": "同意"})
    export.refresh_from_db()
    assert export.status == QueryExport.Status.APPROVED and export.decided_by == qc["people"]["approver"]
    assert engineer.get(f"/data/query/exports/{export.pk}/download/").status_code == 403  # only the requester
    response = client.get(f"/data/query/exports/{export.pk}/download/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxml")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("f", "g", "h", "i", "iden_no")
    assert rows[1][:4] == ("'=1+1", "'-2", "'@x", "'+3")
    cells = " ".join(str(v) for row in rows for v in row)
    assert no_secret_in(cells, qc) and "*" in rows[1][4]
    assert AuditEvent.objects.filter(action="export", object_id=str(export.pk)).exists()
    # a revoked grant: the export re-runs under the grant and is refused
    services.revoke(pm, QueryGrant.objects.get(user=pm))
    assert client.get(f"/data/query/exports/{export.pk}/download/").status_code == 400


def test_a_project_manager_edits_the_classification_and_the_next_query_follows_it(qc, client_for):
    give(qc, "engineer")
    engineer = client_for(qc["people"]["engineer"])
    pm = client_for(qc["people"]["pm"])
    url = f"/data/query/classes/{qc['database'].pk}/"
    assert 'data-column="person_info.iden_no" data-kind="id"' in pm.get(url).content.decode()
    assert (
        engineer.post(url, {"table": "pay_voucher", "column": "use_des", "kind": "secret"}).status_code == 400
    )
    for bad in (
        {"table": "nope", "column": "x", "kind": "id"},
        {"table": "pay_voucher", "column": "nope", "kind": "id"},
        {"table": "pay_voucher", "column": "use_des", "kind": "bad"},
    ):
        assert pm.post(url, bad).status_code == 400
    html = run_page(engineer, qc, "SELECT use_des FROM pay_voucher").content.decode()
    assert 'data-masked="1"' not in html
    assert pm.post(url, {"table": "pay_voucher", "column": "use_des", "kind": "secret"}).status_code == 302
    html = run_page(engineer, qc, "SELECT use_des FROM pay_voucher").content.decode()
    assert "******" in html and 'data-masked="1"' in html
    html = run_page(engineer, qc, "SELECT upper(use_des) FROM pay_voucher").content.decode()
    assert 'id="refusal"' in html and "use_des" in html
    # declaring iden_no not sensitive: the value shape still masks every ID number (second lock)
    pm.post(url, {"table": "person_info", "column": "iden_no", "kind": "none"})
    html = run_page(engineer, qc, "SELECT iden_no FROM person_info").content.decode()
    assert no_secret_in(html, qc) and 'data-masked="1"' in html


def test_the_api_runs_lists_and_scopes_by_region(qc, client_for, token_for):
    give(qc, "finance")
    finance = qc["people"]["finance"]
    headers = token_for(finance)
    response = client_for(finance).post(
        "/api/data/query/run",
        json.dumps({"database": qc["database"].pk, "sql": "SELECT person_id, iden_no FROM person_info"}),
        content_type="application/json",
        **headers,
    )
    body = response.json()
    assert response.status_code == 200 and body["columns"] == ["person_id", "iden_no"]
    assert body["masked_columns"] == ["iden_no"] and no_secret_in(json.dumps(body), qc)
    history = client_for(finance).get("/api/data/query/history", **headers).json()
    assert [h["id"] for h in history] == [body["id"]]
    county = qc["people"]["county"]
    assert client_for(county).get("/api/data/query/history", **token_for(county)).json() == []
    bad = (
        client_for(finance)
        .post(
            "/api/data/query/run",
            json.dumps({"database": qc["database"].pk, "sql": "SELECT reverse(iden_no) FROM person_info"}),
            content_type="application/json",
            **headers,
        )
        .json()
    )
    assert bad["status"] == "已拒绝" and "iden_no" in bad["refusal"] and bad["rows"] == []


def test_another_persons_logged_lookup_is_shown_with_the_number_masked(qc, client_for):
    give(qc, "engineer")
    number = sorted(qc["ids"])[0]
    run_page(
        client_for(qc["people"]["engineer"]),
        qc,
        f"SELECT person_id FROM person_info WHERE iden_no = '{number}'",
    )
    assert number in client_for(qc["people"]["engineer"]).get("/data/query/history/").content.decode()
    assert number not in client_for(qc["people"]["pm"]).get("/data/query/history/").content.decode()


def test_the_command_line_runs_as_a_named_user(qc, monkeypatch):
    give(qc, "engineer")
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    out = io.StringIO()
    call_command(
        "data", "query", "--target", str(qc["database"].pk), "--user", "q_engineer",
        "--sql", "SELECT person_id, iden_no FROM person_info", "--format", "json", stdout=out,
    )  # fmt: skip
    body = json.loads(out.getvalue())
    assert body["masked_columns"] == ["iden_no"] and body["rows"] and no_secret_in(out.getvalue(), qc)
    table = io.StringIO()
    call_command(
        "data", "query", "--target", str(qc["database"].pk), "--user", "q_engineer",
        "--sql", "SELECT count(*) AS n FROM person_info", stdout=table,
    )  # fmt: skip
    assert "共 1 行" in table.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="iden_no"):
        call_command(
            "data", "query", "--target", str(qc["database"].pk), "--user", "q_engineer",
            "--sql", "SELECT lower(iden_no) FROM person_info", stdout=io.StringIO(),
        )  # fmt: skip
    assert QueryLog.objects.count() == 3


def test_a_data_query_ticket_leads_to_the_console_and_the_log_names_it(qc, client_for):
    from caiwei.desk import services as desk

    give(qc, "engineer")
    engineer = qc["people"]["engineer"]
    ticket = desk.create_ticket(
        engineer,
        region=qc["database"].target.region,
        title="请查询某单位的在职人员",
        system="国库集中支付",
        ticket_type="数据查询",
        severity="一般",
        description="查询在职人员",
        requester_name="演练联系人",
    )
    client = client_for(engineer)
    detail = client.get(f"/desk/{ticket.number}/").content.decode()
    assert f"/data/query/?ticket={ticket.number}" in detail
    page = client.get(f"/data/query/?ticket={ticket.number}").content.decode()
    assert f'data-ticket="{ticket.number}"' in page
    run_page(client, qc, "SELECT count(*) FROM person_info", ticket=ticket.number)
    assert QueryLog.objects.get().ticket == ticket


def test_the_api_grants_and_refuses_field_by_field(qc, client_for, token_for):
    pm = qc["people"]["pm"]
    client, headers = client_for(pm), token_for(pm)

    def post(**change):
        body = {
            "user": "q_engineer",
            "database": qc["database"].pk,
            "tables": ["person_info"],
            "valid_until": (timezone.localtime() + timedelta(days=3)).replace(tzinfo=None).isoformat(),
        } | change
        return client.post(
            "/api/data/query/grants", json.dumps(body), content_type="application/json", **headers
        )

    for change, field in (
        ({"user": "nobody"}, "user"),
        ({"user": "q_agent"}, "user"),
        ({"tables": ["nope"]}, "tables"),
        ({"valid_until": "2020-01-01T00:00:00"}, "valid_until"),
        ({"row_limit": 0}, "row_limit"),
        ({"database": 999999}, "database"),
    ):
        response = post(**change)
        assert response.status_code in (400, 422) and field in response.content.decode(), (
            change,
            response.content,
        )
    assert QueryGrant.objects.count() == 0
    created = post()  # a time without zone is read in the platform's zone
    assert created.status_code == 201, created.content
    grant_id = created.json()["id"]
    assert client.get("/api/data/query/grants", **headers).json()[0]["tables"] == ["person_info"]
    revoked = client.post(f"/api/data/query/grants/{grant_id}/revoke", **headers)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert client.post(f"/api/data/query/grants/{grant_id}/revoke", **headers).status_code == 400
