"""Data change requests through the platform: create (the public create_change and the API), the review rules
answered in Chinese with nothing saved, approval by another person (the database refuses author = approver), the
execution window, edits after approval, execution in the worker, images shown masked, rollback with conflicts,
recovery of an attempt left running, the links from a check finding and a 数据变更 ticket, the command."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from caiwei.audit.models import AuditEvent
from caiwei.dataops import changes as eng
from caiwei.dataops import changes_services as services
from caiwei.dataops.models_changes import ChangeAttempt, ChangeRequest

from .changes_support import rows_of
from .conftest import PLANS, window

S = ChangeRequest.Status
FIX = "UPDATE chg_account SET status = 'paid' WHERE status = 'hold'"


def _api(client, method, url, body=None, headers=None):
    return client.generic(
        method, url, json.dumps(body or {}, default=str), content_type="application/json", **(headers or {})
    )


def _approved(w, sql=FIX):
    people = w["people"]
    change = services.create_change(
        database=w["database"], author=people["engineer"], title="修正挂起状态", sql=sql, reason="支付已到账"
    )
    change = services.save_change(people["engineer"], change, **PLANS, **window())
    services.submit(people["engineer"], change)
    return services.decide(people["approver"], change, approve=True)


def test_create_change_reviews_and_refuses_in_chinese_saving_nothing(changes_world):
    w = changes_world
    engineer = w["people"]["engineer"]
    change = services.create_change(
        database=w["database"], author=engineer, title="修正", sql=FIX, reason="到账"
    )
    assert change.status == S.DRAFT and change.estimated_rows == 20 and change.plan[0]["pk"] == ["id"]
    before = ChangeRequest.objects.count()
    for sql, word in (
        ("UPDATE chg_account SET status = 'paid'", "必须带 WHERE"),
        ("DROP TABLE chg_account", "DROP"),
        ("UPDATE sys_user SET user_name = 'x' WHERE user_id = '1'", "禁止修改"),
        ("UPDATE chg_account SET status = 'x' WHERE id > 0", "超过单次变更的上限"),
    ):
        with pytest.raises(ValidationError) as exc, transaction.atomic():
            services.create_change(database=w["database"], author=engineer, title="x", sql=sql, reason="x")
        assert any(word in m for m in exc.value.messages), exc.value.messages
    assert ChangeRequest.objects.count() == before


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.CAIWEI_CHANGE_MAX_ROWS = 150


def test_flow_through_the_api_with_another_person_approving(changes_world, client_for, token_for):
    w = changes_world
    people = w["people"]
    engineer, approver, both = (client_for(people[k]) for k in ("engineer", "approver", "both"))
    body = {"database": w["database"].pk, "title": "修正挂起", "reason": "已到账", "sql": FIX, **PLANS}
    refused = _api(engineer, "POST", "/api/data/changes", {**body, "sql": "DELETE FROM chg_account"})
    assert refused.status_code == 400 and "WHERE" in refused.json()["detail"]
    created = _api(
        engineer, "POST", "/api/data/changes", {**body, **{k: v.isoformat() for k, v in window().items()}}
    )
    assert created.status_code == 201, created.content
    cid = created.json()["id"]
    assert _api(engineer, "POST", f"/api/data/changes/{cid}/execute").status_code == 400  # not approved
    assert (
        _api(approver, "POST", f"/api/data/changes/{cid}/decision", {"approve": True}).status_code == 400
    )  # a draft
    assert _api(engineer, "POST", f"/api/data/changes/{cid}/submit").status_code == 200
    assert _api(engineer, "POST", f"/api/data/changes/{cid}/decision", {"approve": True}).status_code == 403
    assert (
        _api(approver, "POST", f"/api/data/changes/{cid}/decision", {"approve": False}).status_code == 400
    )  # no note
    ok = _api(approver, "POST", f"/api/data/changes/{cid}/decision", {"approve": True, "note": "同意"})
    assert (
        ok.status_code == 200 and ok.json()["status"] == "approved" and ok.json()["approver"] == "c_approver"
    )
    before = rows_of(w["engine"])
    done = _api(engineer, "POST", f"/api/data/changes/{cid}/execute")
    assert done.status_code == 200, done.content
    out = done.json()
    assert out["status"] == "done" and out["attempts"][-1]["rows"] == 20
    after = rows_of(w["engine"])
    assert {i for i in before if before[i] != after[i]} == {i for i in before if before[i][5] == "hold"}
    images = out["images"][0]
    assert images["before_total"] == 20 and images["after_total"] == 20
    acct = images["columns"].index("acct_no")
    assert all("*" in r["before"][acct] for r in images["rows"])  # account numbers masked
    assert [j["step"] for j in out["journal"]][:4] == ["created", "submitted", "approved", "attempt"]
    rb = _api(engineer, "POST", f"/api/data/changes/{cid}/rollback")
    assert rb.status_code == 200 and rb.json()["status"] == "rolled_back"
    assert rows_of(w["engine"]) == before
    # the author who also approves may not approve their own change; the database says so too
    own = _api(
        both, "POST", "/api/data/changes", {**body, **{k: v.isoformat() for k, v in window().items()}}
    ).json()
    assert _api(both, "POST", f"/api/data/changes/{own['id']}/submit").status_code == 200
    refused = _api(both, "POST", f"/api/data/changes/{own['id']}/decision", {"approve": True})
    assert refused.status_code == 400 and "提出人不能审批" in refused.json()["detail"]
    with pytest.raises(IntegrityError), transaction.atomic():
        ChangeRequest.objects.filter(pk=own["id"]).update(approver=people["both"])
    assert AuditEvent.objects.filter(object_type="dataops.changerequest", object_id=str(cid)).count() >= 5


def test_window_and_edit_after_approval(changes_world):
    w = changes_world
    people = w["people"]
    change = _approved(w)
    ChangeRequest.objects.filter(pk=change.pk).update(window_start=timezone.now() + timedelta(hours=1))
    change.refresh_from_db()
    with pytest.raises(ValidationError, match="不在执行窗口内"):
        services.execute(people["engineer"], change)
    change = services.save_change(people["engineer"], change, title="修正挂起（改）", **window())
    assert change.status == S.PENDING and change.approver is None
    with pytest.raises(ValidationError, match="只有已批准"):
        services.execute(people["engineer"], change)
    with pytest.raises(ValidationError, match="只有草稿"):
        services.submit(people["engineer"], change)


def test_approval_refuses_when_the_rows_changed_since_submission(changes_world):
    w = changes_world
    people = w["people"]
    change = services.create_change(
        database=w["database"], author=people["engineer"], title="x", sql=FIX, reason="x"
    )
    change = services.save_change(people["engineer"], change, **PLANS, **window())
    services.submit(people["engineer"], change)
    with w["engine"].begin() as conn:
        conn.exec_driver_sql("UPDATE chg_account SET status = 'hold' WHERE id = 1")
    with pytest.raises(ValidationError, match="提交时估计影响 20 行，现在为 21 行"):
        services.decide(people["approver"], change, approve=True)


def test_rollback_shows_conflicts_and_proceeds_only_when_chosen(changes_world, client_for):
    w = changes_world
    change = _approved(w)
    engineer = client_for(w["people"]["engineer"])
    before = rows_of(w["engine"])
    assert services.execute(w["people"]["engineer"], change).state == ChangeAttempt.State.APPLIED
    with w["engine"].begin() as conn:
        conn.exec_driver_sql("UPDATE chg_account SET acct_no = '6222999988887777666' WHERE id = 10")
    page = engineer.get(f"/data/changes/{change.pk}/rollback/").content.decode()
    assert 'data-conflicts="1"' in page and "6222999988887777666" not in page  # shown masked
    engineer.post(f"/data/changes/{change.pk}/rollback/", {})
    change.refresh_from_db()
    assert change.status == S.DONE and change.attempts.last().state == ChangeAttempt.State.REFUSED
    engineer.post(f"/data/changes/{change.pk}/rollback/", {"skip_conflicts": "on"})
    change.refresh_from_db()
    assert change.status == S.ROLLED_BACK and "1 行冲突" in change.status_note
    now = rows_of(w["engine"])
    assert now[10][2] == "6222999988887777666" and now[10][5] == "paid"  # untouched
    assert all(now[i] == before[i] for i in before if i != 10)


def test_recovery_decides_an_attempt_left_running(changes_world):
    w = changes_world
    change = _approved(w)
    before = rows_of(w["engine"])
    # a crash after the token was saved but before the target was touched
    attempt = services._begin_attempt(change, w["people"]["engineer"], "execute", (S.APPROVED,), S.RUNNING)
    found = services.recover()
    assert found == [{"attempt": attempt.pk, "change": change.pk, "decision": "not_committed"}]
    change.refresh_from_db()
    attempt.refresh_from_db()
    assert change.status == S.FAILED and attempt.state == ChangeAttempt.State.NOT_APPLIED
    assert rows_of(w["engine"]) == before
    # a crash right after the target committed: the platform never heard back
    attempt = services._begin_attempt(change, w["people"]["engineer"], "execute", (S.FAILED,), S.RUNNING)
    outcome = eng.execute(
        w["engine"],
        services.plan_of(change),
        services.DjangoStore(attempt),
        token=attempt.token,
        change_ref="x",
        expected=[20],
    )
    assert outcome.state == "applied"
    assert services.recover()[0]["decision"] == "committed"
    change.refresh_from_db()
    assert change.status == S.DONE and services.applied_execution(change).pk == attempt.pk


def test_from_a_check_finding_and_from_a_ticket(changes_world, client_for):
    from caiwei.checks.models import CheckRun, RuleResult
    from caiwei.desk import services as desk

    w = changes_world
    engineer = w["people"]["engineer"]
    client = client_for(engineer)
    run = CheckRun.objects.create(database=w["database"], packs="accounting", as_of=date(2026, 12, 31))
    result = RuleResult.objects.create(
        run=run,
        rule_id="ACC-001",
        pack="accounting",
        title="科目记账方向与业务类型不符",
        severity="紧急",
        module="总预算会计",
        count=3,
        keys=[["GV1"], ["GV2"], ["110101**********34#0123456789"]],
    )
    page = client.get(f"/checks/results/{result.pk}/").content.decode()
    assert f"/data/changes/new/?finding={result.pk}" in page
    form = client.get(f"/data/changes/new/?finding={result.pk}").content.decode()
    assert 'value="gl_voucher"' in form and 'value="gl_vou_id"' in form
    assert "GV1\nGV2" in form and "110101199003071234" not in form and "已脱敏" in form
    ticket = desk.create_ticket(
        engineer,
        region=w["region"],
        title="支付状态错误",
        system="国库集中支付",
        ticket_type="数据变更",
        severity="一般",
        description="状态应为已支付",
        requester_name="财政局",
    )
    detail = client.get(f"/desk/{ticket.number}/").content.decode()
    assert f"/data/changes/new/?ticket={ticket.number}" in detail
    response = client.post(
        f"/data/changes/new/?ticket={ticket.number}",
        {
            "database": w["database"].pk,
            "title": "改状态",
            "reason": "工单",
            "mode": "fix",
            "fix_table": "chg_account",
            "fix_column": "status",
            "fix_value": "paid",
            "fix_key_columns": "id",
            "fix_keys": "10\n20",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    change = ChangeRequest.objects.get(ticket=ticket)
    assert change.origin == "ticket" and change.estimated_rows == 2
    assert change.sql == "UPDATE chg_account SET status = 'paid' WHERE id IN ('10', '20')"


def test_pages_render_in_chinese_for_each_step(changes_world, client_for):
    w = changes_world
    change = _approved(w)
    services.execute(w["people"]["engineer"], change)
    for who in ("engineer", "approver", "finance"):
        client = client_for(w["people"][who])
        assert client.get("/data/changes/").status_code == 200
        page = client.get(f"/data/changes/{change.pk}/")
        assert page.status_code == 200 and "前后镜像" in page.content.decode()
    review = client_for(w["people"]["engineer"]).post(
        "/data/changes/review/",
        {"database": w["database"].pk, "mode": "sql", "sql": "DELETE FROM chg_account"},
    )
    assert "必须带 WHERE" in review.content.decode()
    county = client_for(w["people"]["county"])
    assert county.get(f"/data/changes/{change.pk}/").status_code == 404


def test_command_line(changes_world, capsys):
    w = changes_world
    people = w["people"]
    end = timezone.localtime(timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    call_command(
        "data",
        "change",
        "create",
        "--user",
        "c_engineer",
        "--database",
        str(w["database"].pk),
        "--title",
        "命令行",
        "--reason",
        "到账",
        "--sql",
        FIX,
        "--emergency-plan",
        "停",
        "--rollback-plan",
        "回滚",
        "--window-start",
        timezone.localtime(timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "--window-end",
        end,
    )
    change = ChangeRequest.objects.get(title="命令行")
    call_command("data", "change", "submit", str(change.pk), "--user", "c_engineer")
    call_command("data", "change", "approve", str(change.pk), "--user", "c_approver")
    call_command("data", "change", "execute", str(change.pk), "--user", "c_engineer")
    call_command("data", "change", "rollback", str(change.pk), "--user", "c_engineer")
    call_command("data", "change", "recover")
    call_command("data", "change", "show", str(change.pk))
    out = capsys.readouterr().out
    assert "已回滚" in out and '"status": "rolled_back"' in out
    assert people
