"""项目经理的维护页面: SLA policies with rules and regions, complaints and their 认定, the report's header; scoped to
the manager's regions, refused to everyone else, audited, with Chinese field errors."""

import pytest

from caiwei.accounts.roles import Role
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.desk import services
from caiwei.desk.models import Complaint, ReportSettings, SlaPolicy, SlaRule

pytestmark = pytest.mark.django_db
LEAGUE, COUNTY, OTHER_COUNTY = "152500000", "152502000", "152501000"


def policy_data(code="county-x", name="锡林浩特市策略", regions=(), rules=(), **extra):
    data = {
        "code": code,
        "name": name,
        "source": "演示合同第 3 条",
        "warn_ratio": "0.8",
        "regions": [str(r.pk) for r in regions],
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": str(sum(1 for r in rules if r.get("id"))),
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for n, rule in enumerate(rules):
        row = {"severity": "", "ticket_type": "", "key_period": "", "calendar": "workday", **rule}
        for key, value in row.items():
            data[f"rules-{n}-{key}"] = value
    data.update(extra)
    return data


@pytest.fixture
def county_pm(make_user):
    return make_user("t_pm_county", Role.PROJECT_MANAGER, regions=(COUNTY,))


@pytest.fixture
def other_pm(make_user):
    return make_user("t_pm_other", Role.PROJECT_MANAGER, regions=(OTHER_COUNTY,))


def test_pm_creates_and_edits_a_policy_with_rules(county_pm, regions, client_for):
    client = client_for(county_pm)
    assert client.get("/desk/manage/policies/").status_code == 200
    assert client.get("/desk/manage/policies/new/").status_code == 200
    response = client.post(
        "/desk/manage/policies/new/",
        policy_data(regions=[regions[COUNTY]], rules=[{"clock": "first_response", "minutes": "60"}]),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    policy = SlaPolicy.objects.get(code="county-x")
    assert list(policy.regions.values_list("code", flat=True)) == [COUNTY]
    rule = policy.rules.get()
    assert (rule.clock, rule.minutes) == ("first_response", 60)
    assert AuditEvent.objects.filter(
        action=AuditAction.CREATE, object_type="desk.slarule", actor=county_pm
    ).exists()
    # Edit: change the rule, add a same-day resolution for consultations.
    response = client.post(
        f"/desk/manage/policies/{policy.pk}/",
        policy_data(
            name="锡林浩特市策略（修订）",
            regions=[regions[COUNTY]],
            rules=[
                {"id": str(rule.pk), "policy": str(policy.pk), "clock": "first_response", "minutes": "30"},
                {"clock": "resolution", "ticket_type": "咨询", "same_day": "on"},
            ],
        ),
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.name == "锡林浩特市策略（修订）"
    assert sorted(policy.rules.values_list("clock", "minutes", "same_day")) == [
        ("first_response", 30, False),
        ("resolution", None, True),
    ]
    assert AuditEvent.objects.filter(action=AuditAction.UPDATE, object_type="desk.slapolicy").exists()
    # New tickets of that county now follow it.
    ticket = services.create_ticket(
        county_pm,
        region=regions[COUNTY],
        system="国库集中支付",
        ticket_type="咨询",
        title="问题",
        description="描述",
        requester_name="经办人（演示）",
    )
    assert ticket.policy == policy


def test_invalid_policy_shows_chinese_errors(county_pm, regions, client_for):
    client = client_for(county_pm)
    page = client.post(
        "/desk/manage/policies/new/",
        policy_data(
            code="坏 代码",
            warn_ratio="1.5",
            regions=[],
            rules=[
                {"clock": "first_response", "minutes": "60", "workdays": "1"},
                {"clock": "resolution", "calendar": "lunar"},
            ],
        ),
    )
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("预警比例应大于 0", "请至少选择一个适用区划", "三者须且只能填一项", "业务日历“lunar”不存在"):
        assert text in html, text
    assert 'data-error="code"' in html
    assert not SlaPolicy.objects.filter(name="锡林浩特市策略").exists()
    # No rule at all.
    html = client.post("/desk/manage/policies/new/", policy_data(regions=[regions[COUNTY]])).content.decode()
    assert "策略至少要有一条时限规则" in html
    # A region outside the grant is no choice; a region already under another policy is refused.
    html = client.post(
        "/desk/manage/policies/new/",
        policy_data(regions=[regions[OTHER_COUNTY]], rules=[{"clock": "first_response", "minutes": "60"}]),
    ).content.decode()
    assert 'data-error="regions"' in html and not SlaPolicy.objects.filter(code="county-x").exists()
    first = SlaPolicy.objects.create(code="first", name="先有的策略")
    first.regions.set([regions[COUNTY]])
    html = client.post(
        "/desk/manage/policies/new/",
        policy_data(regions=[regions[COUNTY]], rules=[{"clock": "first_response", "minutes": "60"}]),
    ).content.decode()
    assert "一个区划只能适用一个策略" in html


def test_shared_presets_are_read_only_to_a_county_manager(county_pm, users, regions, client_for):
    preset = services.default_policy()
    client = client_for(county_pm)
    page = client.get(f"/desk/manage/policies/{preset.pk}/")
    assert page.status_code == 200 and "只有授权覆盖全辖的项目经理可以修改" in page.content.decode()
    before = preset.name
    assert (
        client.post(
            f"/desk/manage/policies/{preset.pk}/", policy_data(code=preset.code, name="改")
        ).status_code
        == 403
    )
    preset.refresh_from_db()
    assert preset.name == before


def test_pm_registers_and_decides_a_complaint(county_pm, regions, client_for):
    client = client_for(county_pm)
    page = client.post(
        "/desk/manage/complaints/", {"region": regions[COUNTY].pk, "complainant": "", "description": ""}
    )
    assert page.status_code == 200 and "这个字段是必填项" in page.content.decode()
    response = client.post(
        "/desk/manage/complaints/",
        {"region": regions[COUNTY].pk, "complainant": "某单位经办人（演示）", "description": "回复太慢"},
    )
    assert response.status_code == 302
    complaint = Complaint.objects.get(complainant="某单位经办人（演示）")
    html = client.post(
        f"/desk/manage/complaints/{complaint.pk}/", {"valid": "true", "note": ""}
    ).content.decode()
    assert "请填写认定理由" in html
    response = client.post(
        f"/desk/manage/complaints/{complaint.pk}/", {"valid": "true", "note": "超过合同时限未响应"}
    )
    assert response.status_code == 302
    complaint.refresh_from_db()
    assert complaint.valid is True and complaint.decided_by == county_pm
    assert complaint.decision_note == "超过合同时限未响应"
    assert AuditEvent.objects.filter(
        action=AuditAction.UPDATE, object_type="desk.complaint", object_id=str(complaint.pk), actor=county_pm
    ).exists()
    listing = client.get("/desk/manage/complaints/?state=valid").content.decode()
    assert "某单位经办人（演示）" in listing


def test_other_roles_get_403(users, client_for):
    complaint = Complaint.objects.create(
        region=users["pm"].regions.first(), complainant="甲", description="慢"
    )
    urls = [
        "/desk/manage/policies/",
        "/desk/manage/policies/new/",
        f"/desk/manage/policies/{services.default_policy().pk}/",
        "/desk/manage/complaints/",
        f"/desk/manage/complaints/{complaint.pk}/",
        "/desk/manage/report-settings/",
    ]
    for role in ("engineer", "agent", "unit", "finance"):
        client = client_for(users[role])
        for url in urls:
            assert client.get(url).status_code == 403, (role, url)
            assert client.post(url, {}).status_code == 403, (role, url)
    assert client_for(users["pm"]).get(urls[0]).status_code == 200


def test_a_manager_of_another_region_cannot_see_or_edit(county_pm, other_pm, regions, client_for):
    policy = SlaPolicy.objects.create(code="county-own", name="本县策略标记")
    policy.regions.set([regions[COUNTY]])
    SlaRule.objects.create(policy=policy, clock="first_response", minutes=60)
    complaint = Complaint.objects.create(
        region=regions[COUNTY], complainant="本县投诉人标记", description="慢"
    )
    other = client_for(other_pm)
    assert "本县策略标记" not in other.get("/desk/manage/policies/").content.decode()
    assert other.get(f"/desk/manage/policies/{policy.pk}/").status_code == 404
    assert (
        other.post(
            f"/desk/manage/policies/{policy.pk}/", policy_data(code="county-own", name="改")
        ).status_code
        == 404
    )
    assert "本县投诉人标记" not in other.get("/desk/manage/complaints/").content.decode()
    assert other.get(f"/desk/manage/complaints/{complaint.pk}/").status_code == 404
    assert (
        other.post(f"/desk/manage/complaints/{complaint.pk}/", {"valid": "false", "note": "无"}).status_code
        == 404
    )
    complaint.refresh_from_db()
    policy.refresh_from_db()
    assert complaint.valid is None and policy.name == "本县策略标记"


def test_league_manager_sees_county_rows(users, regions, client_for):
    policy = SlaPolicy.objects.create(code="county-own", name="本县策略标记")
    policy.regions.set([regions[COUNTY]])
    SlaRule.objects.create(policy=policy, clock="first_response", minutes=60)
    client = client_for(users["pm"])
    assert "本县策略标记" in client.get("/desk/manage/policies/").content.decode()
    assert client.get(f"/desk/manage/policies/{policy.pk}/").status_code == 200


def test_report_settings_page(county_pm, other_pm, users, regions, client_for):
    client = client_for(users["pm"])
    html = client.post(
        "/desk/manage/report-settings/", {"region": regions[LEAGUE].pk, "contract_name": "", "issuer": ""}
    ).content.decode()
    assert "这个字段是必填项" in html
    response = client.post(
        "/desk/manage/report-settings/",
        {"region": regions[LEAGUE].pk, "contract_name": "演示运维合同", "issuer": "演示项目组"},
    )
    assert response.status_code == 302
    assert ReportSettings.objects.get(region=regions[LEAGUE]).issuer == "演示项目组"
    client.post(
        "/desk/manage/report-settings/",
        {"region": regions[LEAGUE].pk, "contract_name": "演示运维合同（续签）", "issuer": "演示项目组"},
    )
    assert ReportSettings.objects.get(region=regions[LEAGUE]).contract_name == "演示运维合同（续签）"
    # A county manager may not write the league's header; the report of a county user still carries it.
    other = client_for(other_pm)
    page = other.post(
        "/desk/manage/report-settings/",
        {"region": regions[LEAGUE].pk, "contract_name": "改", "issuer": "改"},
    )
    assert page.status_code == 200 and "请选择您授权范围内的区划" in page.content.decode()
    assert "演示运维合同（续签）" not in other.get("/desk/manage/report-settings/").content.decode()
    from caiwei.desk.report import settings_for

    assert settings_for(other_pm).contract_name == "演示运维合同（续签）"


def test_api(county_pm, other_pm, regions, users, client_for):
    client = client_for(county_pm)
    body = {
        "code": "api-county",
        "name": "接口策略",
        "regions": [COUNTY],
        "rules": [{"clock": "first_response", "minutes": 45}, {"clock": "resolution", "workdays": 2}],
    }
    created = client.post("/api/desk/policies", body, content_type="application/json")
    assert created.status_code == 201, created.content
    pid = created.json()["id"]
    body["rules"] = [{"clock": "first_response", "minutes": 30}]
    changed = client.put(f"/api/desk/policies/{pid}", body, content_type="application/json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["rules"] == [
        {
            "severity": "",
            "ticket_type": "",
            "key_period": "",
            "clock": "first_response",
            "minutes": 30,
            "workdays": None,
            "same_day": False,
            "calendar": "workday",
        }
    ]
    bad = client.post(
        "/api/desk/policies",
        {**body, "code": "api-bad", "regions": [OTHER_COUNTY], "rules": [{"clock": "first_response"}]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "三者须且只能填一项" in bad.json()["detail"]
    assert "api-county" in [p["code"] for p in client.get("/api/desk/policies").json()]
    other = client_for(other_pm)
    assert "api-county" not in [p["code"] for p in other.get("/api/desk/policies").json()]
    assert other.put(f"/api/desk/policies/{pid}", body, content_type="application/json").status_code == 404
    assert client_for(users["engineer"]).get("/api/desk/policies").status_code == 403
    complaint = Complaint.objects.create(region=regions[COUNTY], complainant="接口投诉人", description="慢")
    assert [c["id"] for c in client.get("/api/desk/complaints?state=pending").json()] == [complaint.pk]
    assert other.get("/api/desk/complaints").json() == []
