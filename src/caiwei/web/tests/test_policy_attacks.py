"""Attacks on "one declared policy per route, enforced in one middleware": what a hostile user or a stranger to the
code would try beside the route × role matrix of test_policy.py — other methods, odd path parameters, a token beside
someone else's session, ids that come from the body or the query rather than the URL, the admin's secondary pages.

Each answer must be a 4xx with a Chinese message (never a 5xx), and nothing of another region may be read or changed.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from caiwei.accounts import services as accounts
from caiwei.accounts.models import ApiToken, User
from caiwei.accounts.roles import Role
from caiwei.checks.models import CheckRun, Target, TargetDatabase
from caiwei.desk import services as desk
from caiwei.desk.models import (
    Complaint,
    EscalationRule,
    Notification,
    SlaPolicy,
    SlaRule,
    Ticket,
    VendorOrder,
)
from caiwei.jobs.models import Job

OWN, FOREIGN = "152501000", "152502000"
MARK = "外区标记"
FIELDS = {
    "system": "国库集中支付",
    "ticket_type": "故障",
    "severity": "一般",
    "description": "凭证状态一直为“发送中”",
    "requester_name": "演练联系人",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def w(regions, make_user, tmp_path, settings):
    """A county worker (agent, engineer and project manager at once) in OWN, the same in FOREIGN, and objects in
    both counties; every FOREIGN object carries MARK."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    worker = (Role.PROJECT_MANAGER, Role.AGENT, Role.ENGINEER)
    me = make_user("x_me", *worker, regions=(OWN,))
    other = make_user("x_other", *worker, regions=(FOREIGN,))
    mine = desk.create_ticket(me, region=regions[OWN], title="本区工单", **FIELDS)
    theirs = desk.create_ticket(other, region=regions[FOREIGN], title=f"工单{MARK}", **FIELDS)
    complaint = Complaint.objects.create(
        region=regions[FOREIGN], complainant=f"投诉人{MARK}", description="慢"
    )
    target = Target.objects.create(name=f"对象{MARK}", system="国库集中支付", region=regions[FOREIGN])
    database = TargetDatabase.objects.create(
        target=target,
        name=f"库{MARK}",
        dialect="sqlite",
        database=str(tmp_path / "f.sqlite3"),
        as_of=date(2026, 12, 31),
    )
    run = CheckRun.objects.create(database=database, packs="all", as_of=date(2026, 12, 31))
    job = Job.objects.create(kind="t", title=f"任务{MARK}", created_by=other, region=regions[FOREIGN])
    return {
        "me": me,
        "other": other,
        "mine": mine,
        "theirs": theirs,
        "complaint": complaint,
        "database": database,
        "run": run,
        "job": job,
        "regions": regions,
    }


@pytest.fixture
def me(w, client_for) -> Client:
    client = client_for(w["me"])
    client.raise_request_exception = False  # a 500 is an answer to assert on, not an exception in the test
    return client


def detail(response) -> str:
    return response.json()["detail"]


def assert_chinese_4xx(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    if response.headers.get("Content-Type", "").startswith("application/json"):
        assert CJK.search(detail(response)), response.content
    else:
        assert CJK.search(response.content.decode()), response.content[:300]


def post_json(client, url, body, **extra):
    return client.post(url, json.dumps(body), content_type="application/json", **extra)


# --- methods ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "PROPFIND"])
def test_api_methods_an_operation_does_not_have_are_refused_in_chinese(w, me, method):
    """HEAD/OPTIONS/PUT/DELETE reached the operation's view undeclared; ninja answered an empty or English 405."""
    for number in (w["mine"].number, w["theirs"].number):
        response = me.generic(method, f"/api/desk/tickets/{number}")
        assert response.status_code == 405
        assert response["Allow"] == "GET"
        if method != "HEAD":
            assert "不支持" in detail(response) and MARK not in response.content.decode()


def test_method_override_headers_change_nothing(w, me):
    # X-HTTP-Method-Override is not honoured: a POST stays a POST (and this path has no POST operation).
    response = me.post(f"/api/jobs/{w['job'].pk}", HTTP_X_HTTP_METHOD_OVERRIDE="GET")
    assert response.status_code == 405 and "不支持" in detail(response)
    response = me.get(f"/api/desk/tickets/{w['mine'].number}/status", HTTP_X_HTTP_METHOD_OVERRIDE="POST")
    assert response.status_code == 405
    assert Ticket.objects.get(pk=w["mine"].pk).status == "new"


# --- who is calling -----------------------------------------------------------------------------------------------


def test_a_token_beside_another_users_session_is_who_calls(w, me, token_for):
    """The policy was checked for the session's user while the API ran the view as the token's user: a ticket of
    the token's region was refused by the middleware (404) and one of the session's answered an English 404 by the
    view — two people in one request. Now the token decides, in both places."""
    bearer = token_for(w["other"])
    assert me.get("/api/accounts/me", **bearer).json()["username"] == "x_other"
    assert me.get(f"/api/desk/tickets/{w['theirs'].number}", **bearer).status_code == 200
    response = me.get(f"/api/desk/tickets/{w['mine'].number}", **bearer)
    assert_chinese_4xx(response, 404)
    assert me.get(f"/api/desk/tickets/{w['mine'].number}").status_code == 200  # the session alone: itself


@pytest.mark.parametrize("how", ["deactivated", "locked", "revoked", "unknown", "padded", "empty"])
def test_a_dead_token_is_refused_even_beside_a_valid_session(w, me, token_for, how):
    """A token of a deactivated or locked account, next to a valid session cookie of another account, fell back
    to the session: the request went through as someone the token's holder is not."""
    bearer = token_for(w["other"])
    key = bearer["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    if how == "deactivated":
        User.objects.filter(pk=w["other"].pk).update(is_active=False)
    elif how == "locked":
        User.objects.filter(pk=w["other"].pk).update(
            locked_until=datetime(2999, 1, 1, tzinfo=ZoneInfo("UTC"))
        )
    elif how == "revoked":
        ApiToken.objects.filter(user=w["other"]).update(revoked=True)
    elif how == "unknown":
        bearer = {"HTTP_AUTHORIZATION": "Bearer cw_nonsense"}
    elif how == "padded":
        bearer = {"HTTP_AUTHORIZATION": f"Bearer  {key}"}  # the API's own parser keeps the second space
    else:
        bearer = {"HTTP_AUTHORIZATION": "Bearer"}
    response = me.get("/api/accounts/me", **bearer)
    assert_chinese_4xx(response, 401)
    assert "x_me" not in response.content.decode()


def test_a_session_that_lost_its_role_or_region_mid_session(w, me, client_for):
    assert me.get("/api/desk/tickets").status_code == 200
    accounts.set_regions(None, w["me"], [FOREIGN])
    # Regions are read on every request: the old county's ticket is gone at once.
    assert me.get(f"/api/desk/tickets/{w['mine'].number}").status_code in (401, 404)
    accounts.set_roles(None, w["me"], [Role.UNIT_USER])
    assert_chinese_4xx(me.get("/api/desk/tickets"), 401)
    assert me.get("/desk/").status_code == 302
    assert me.get("/admin/desk/complaint/").status_code in (302, 403)


# --- path parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/%EF%BC%91",  # '１' (a full-width digit) — int() would take it
        "/api/jobs/0{job}",
        "/api/jobs/-{job}",
        "/api/jobs/99999999999999999999999999",
        "/api/jobs/{job}%00",
        "/jobs/0{job}/",
        "/jobs/99999999999999999999999999/",
        "/api/desk/tickets/{theirs_lower}",
        "/api/desk/tickets/{theirs}%2Fcomments",
        "/api/desk/tickets/{theirs}%00",
        "/desk/{theirs_lower}/",
        "/desk/{theirs}%00/",
        "/desk/{theirs}/files/99999999999999999999999/",
        "/checks/runs/{run}/",
        "/sandbox/files/a%00b",
    ],
)
def test_odd_path_parameters_answer_404_in_chinese(w, me, client_for, users, path):
    url = path.format(
        job=w["job"].pk,
        theirs=w["theirs"].number,
        theirs_lower=w["theirs"].number.lower(),
        run=w["run"].pk,
    )
    client = me
    if url.startswith("/sandbox/"):
        client = client_for(users["pm"])  # the league's project manager passes the sandbox gate
        client.raise_request_exception = False
    response = client.get(url)
    assert_chinese_4xx(response, 404)
    assert MARK not in response.content.decode()


def test_trailing_slash_and_append_slash(w, me):
    assert me.get(f"/api/desk/tickets/{w['theirs'].number}/").status_code == 404
    redirect = me.get(f"/desk/{w['theirs'].number}")
    assert redirect.status_code == 301
    assert me.get(redirect["Location"]).status_code == 404


# --- ids in bodies and query strings ------------------------------------------------------------------------------


def test_ids_in_bodies_and_queries_are_scoped(w, me):
    theirs = w["theirs"].number
    response = post_json(me, "/api/checks/runs", {"database": w["database"].pk})
    assert_chinese_4xx(response, 404)  # was {"detail": "Not Found"}
    assert not CheckRun.objects.exclude(pk=w["run"].pk).exists()
    assert me.get(f"/api/checks/runs?database={w['database'].pk}").json() == []
    assert me.get(f"/api/desk/tickets?region={FOREIGN}").json() == []
    assert MARK not in me.get(f"/desk/?region={FOREIGN}&q={theirs}").content.decode()
    call = {"region": OWN, "answered": True, "caller_number": "0479", "ticket": theirs}
    assert_chinese_4xx(post_json(me, "/api/desk/calls", call), 400)
    assert_chinese_4xx(post_json(me, "/api/desk/calls", {**call, "region": FOREIGN, "ticket": None}), 403)
    complaint = {"region": OWN, "complainant": "甲", "description": "慢", "ticket": theirs}
    assert_chinese_4xx(post_json(me, "/api/desk/complaints", complaint), 400)
    ticket = {**FIELDS, "region": FOREIGN, "title": "越区登记"}
    assert_chinese_4xx(post_json(me, "/api/desk/tickets", ticket), 403)
    assert MARK not in me.get(f"/desk/new/?call={w['theirs'].pk}").content.decode()


def test_a_ticket_is_not_assigned_to_a_worker_of_another_region(w, me):
    """The assignee came from the body (a username in the API, a user id on the page) and was any worker of any
    region: the ticket went to someone who cannot open it, and the page listed every region's workers."""
    number = w["mine"].number
    response = post_json(me, f"/api/desk/tickets/{number}/assign", {"assignee": "x_other"})
    assert_chinese_4xx(response, 400)
    me.post(f"/desk/{number}/act/", {"action": "assign", "assignee": w["other"].pk}, follow=True)
    assert Ticket.objects.get(pk=w["mine"].pk).assignee_id is None
    page = me.get(f"/desk/{number}/").content.decode()
    assert "x_other" not in page and "x_me" in page
    assert post_json(me, f"/api/desk/tickets/{number}/assign", {"assignee": "x_me"}).status_code == 200


def test_posted_ids_that_are_not_numbers_are_not_500(w, me):
    number = w["mine"].number
    Ticket.objects.filter(pk=w["mine"].pk).update(requester=w["me"], status="resolved")
    for data in (
        {"action": "assign", "assignee": "abc"},
        {"action": "assign", "assignee": "99999999999999999999999"},
        {"action": "follow_up", "order": "abc", "note": "x", "status": "open"},
    ):
        response = me.post(f"/desk/{number}/act/", data)
        assert response.status_code in (302, 404), (data, response.status_code)
    assert Ticket.objects.get(pk=w["mine"].pk).assignee_id is None  # a bad id does not unassign or assign
    response = me.post(f"/desk/{number}/confirm/", {"action": "rate", "score": "abc"}, follow=True)
    assert response.status_code == 200 and "评分应为" in response.content.decode()


# --- the admin ----------------------------------------------------------------------------------------------------


def test_admin_secondary_pages_do_not_reach_another_region(w, me):
    pk = w["complaint"].pk
    for url in (
        f"/admin/desk/complaint/{pk}/change/",
        f"/admin/desk/complaint/{pk}/history/",
        f"/admin/desk/complaint/{pk}/delete/",
        f"/admin/desk/complaint/?region__id__exact={w['regions'][FOREIGN].pk}",
        f"/admin/desk/complaint/?q={MARK}",
        f"/admin/desk/complaint/?_popup=1&_to_field=id&_changelist_filters=region__id__exact%3D{pk}",
        "/admin/autocomplete/?app_label=desk&model_name=complaint&field_name=ticket&term=GD",
        "/admin/autocomplete/?app_label=desk&model_name=complaint&field_name=region&term=",
    ):
        response = me.get(url, follow=True)
        assert response.status_code < 500 and MARK not in response.content.decode(), url
    me.post(
        "/admin/desk/complaint/",
        {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
    )
    assert Complaint.objects.filter(pk=pk).exists()


def test_admin_list_filters_offer_only_own_regions(w, me):
    """The changelist's 区划 filter listed every region of the tree (a neighbour county's name included)."""
    Complaint.objects.create(region=w["regions"][OWN], complainant="本区投诉人", description="慢")
    page = me.get("/admin/desk/complaint/").content.decode()
    assert "二连浩特市" in page and "锡林浩特市" not in page


def test_admin_bad_parameters_answer_400_in_chinese(me):
    response = me.get("/admin/checks/target/?_to_field=description")
    assert_chinese_4xx(response, 400)


def test_county_manager_cannot_rewrite_the_shared_sla_policy(w, me, client_for, users):
    """The default SLA policy (tied to no region) applies to every region without one of its own: a county project
    manager could rewrite the service levels of the neighbouring counties and the league in the admin."""
    default = desk.default_policy()
    rules = SlaRule.objects.filter(policy=default).count()
    change = f"/admin/desk/slapolicy/{default.pk}/change/"
    assert me.get(change).status_code == 200  # still readable
    me.post(change, {"code": default.code, "name": "改", "warn_ratio": "0.1", "source": "改"})
    me.post(f"/admin/desk/slapolicy/{default.pk}/delete/", {"post": "yes"})
    SlaRule.objects.filter(policy=default).delete()
    me.post("/admin/desk/slapolicy/", {"action": "reset_to_preset", "_selected_action": [default.pk]})
    default.refresh_from_db()
    assert default.name != "改" and float(default.warn_ratio) != 0.1
    assert SlaRule.objects.filter(policy=default).count() == 0  # the county's reset did not run
    league = client_for(users["pm"])
    league.post("/admin/desk/slapolicy/", {"action": "reset_to_preset", "_selected_action": [default.pk]})
    assert SlaRule.objects.filter(policy=default).count() == rules  # the league's manager still may


def test_escalation_does_not_tell_or_hand_a_ticket_to_another_region(w):
    """A rule is global; its target user (or, with none, every project manager) got the notice of a ticket in a
    region outside their grant, and a reassign rule handed it to them."""
    sh = ZoneInfo("Asia/Shanghai")
    Ticket.objects.filter(pk=w["mine"].pk).update(opened_at=datetime(2026, 11, 24, 9, tzinfo=sh))
    EscalationRule.objects.create(
        name="转外区", clock="first_response", at_percent=10, action="reassign", target_user=w["other"]
    )
    EscalationRule.objects.create(name="通知", clock="first_response", at_percent=20)
    from caiwei.desk.escalation import sweep

    sweep(now=datetime(2026, 11, 24, 11, 0, tzinfo=sh))
    assert not Notification.objects.filter(user=w["other"], ticket=w["mine"]).exists()
    assert Ticket.objects.get(pk=w["mine"].pk).assignee_id != w["other"].pk
    assert Notification.objects.filter(user=w["me"], ticket=w["mine"]).exists()


def test_a_revoked_token_cannot_be_revived_in_the_admin(w, client_for, users):
    token, _ = ApiToken.issue(w["other"], "脚本")
    ApiToken.objects.filter(pk=token.pk).update(revoked=True)
    admin = client_for(users["sysadmin"])
    admin.post(
        f"/admin/accounts/apitoken/{token.pk}/change/",
        {"expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},  # "revoked" unticked
    )
    assert ApiToken.objects.get(pk=token.pk).revoked


def test_vendor_orders_of_another_ticket_are_not_followed_up(w, me):
    order = VendorOrder.objects.create(
        ticket=w["theirs"], reference="V-1", due=date(2026, 12, 31), vendor="省级开发团队"
    )
    response = me.post(
        f"/desk/{w['mine'].number}/act/",
        {"action": "follow_up", "order": order.pk, "note": "x", "status": "open"},
    )
    assert response.status_code == 404
    assert not order.follow_ups.exists()


def test_foreign_policy_rows_stay_out_of_reach(w, me):
    policy = SlaPolicy.objects.create(code="foreign", name=f"策略{MARK}")
    policy.regions.set([w["regions"][FOREIGN]])
    assert MARK not in me.get("/admin/desk/slapolicy/").content.decode()
    assert me.get(f"/admin/desk/slapolicy/{policy.pk}/change/", follow=True).status_code == 200
    assert MARK not in me.get(f"/admin/desk/slapolicy/{policy.pk}/change/", follow=True).content.decode()
