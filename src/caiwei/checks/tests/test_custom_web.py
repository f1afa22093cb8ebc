"""本地规则 from the pages, the API and the command."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from caiwei.accounts.roles import Role
from caiwei.checks import custom_services as cs
from caiwei.checks.custom_models import LocalRule, LocalRuleVersion
from caiwei.conftest import PASSWORD

from .test_custom_rules import BASE, GOOD


@pytest.fixture
def people(make_user):
    return {
        "engineer": make_user("w_engineer", Role.ENGINEER, regions=("152500000",)),
        "pm": make_user("w_pm", Role.PROJECT_MANAGER, regions=("152500000",)),
        "pm_other": make_user("w_pm_other", Role.PROJECT_MANAGER, regions=("152502000",)),
        "finance": make_user("w_finance", Role.FINANCE_STAFF, regions=("152500000",)),
    }


def test_pages_write_version_submit_approve(people, client_for):
    engineer, pm = client_for(people["engineer"]), client_for(people["pm"])
    assert "本地规则" in engineer.get(reverse("checks:index")).content.decode()
    page = engineer.get(reverse("checks:local_rule_new") + "?copy=QUOTA-001").content.decode()
    assert "id: L-QUOTA-001" in page
    refused = engineer.post(
        reverse("checks:local_rule_validate"), {"text": BASE.format(sql="DELETE FROM ba_bgt_info")}
    )
    assert "不能含 DELETE" in refused.content.decode()
    bad = engineer.post(reverse("checks:local_rule_new"), {"text": BASE.format(sql="SELECT 1 AS x")})
    assert bad.status_code == 200 and "bgt_id" in bad.content.decode() and LocalRule.objects.count() == 0
    made = engineer.post(reverse("checks:local_rule_new"), {"text": GOOD})
    rule = LocalRule.objects.get()
    assert made.status_code == 302 and made["Location"] == reverse("checks:local_rule", args=[rule.pk])
    detail = reverse("checks:local_rule", args=[rule.pk])
    engineer.post(detail, {"text": GOOD.replace("< 0", "< -5"), "note": "放宽"})
    page = engineer.get(detail).content.decode()
    assert (
        "第 2 版" in page and "+  SELECT b.bgt_id, b.amount FROM ba_bgt_info b WHERE b.amount &lt; -5" in page
    )
    engineer.post(reverse("checks:local_rule_action", args=[rule.pk]), {"action": "submit"})
    denied = engineer.post(
        reverse("checks:local_rule_decide", args=[rule.pk]), {"number": 2, "decision": "approve"}
    )
    assert denied.status_code == 403
    other = client_for(people["pm_other"])
    assert other.get(detail).status_code == 404
    assert (
        other.post(
            reverse("checks:local_rule_decide", args=[rule.pk]), {"number": 2, "decision": "approve"}
        ).status_code
        == 404
    )
    pm.post(reverse("checks:local_rule_decide", args=[rule.pk]), {"number": 2, "decision": "approve"})
    rule.refresh_from_db()
    assert rule.approved.number == 2
    finance = client_for(people["finance"])
    assert finance.get(detail).status_code == 200  # may read
    assert finance.post(detail, {"text": GOOD}).status_code == 403  # may not write
    exported = engineer.get(reverse("checks:local_rule_export", args=[rule.pk]) + "?version=1")
    assert exported.status_code == 200 and b"version:" in exported.content
    upload = SimpleUploadedFile("r.yaml", exported.content)
    engineer.post(reverse("checks:local_rule_import"), {"file": upload})
    assert rule.latest.number == 3 and rule.latest.text == rule.versions.get(number=1).text
    broken = SimpleUploadedFile("broken.yaml", b"id: L-TEST-001\ntitle: [x\n")
    engineer.post(reverse("checks:local_rule_import"), {"file": broken})
    assert rule.versions.count() == 3


def test_api(people, token_for):
    from django.test import Client

    client = Client()
    auth, pm_auth = token_for(people["engineer"]), token_for(people["pm"])

    def post(url, body, headers=auth):
        return client.post(url, body, content_type="application/json", **headers)

    bad = post(
        "/api/checks/local-rules",
        {"text": BASE.format(sql="SELECT bgt_id, pg_sleep(5) AS s FROM ba_bgt_info")},
    )
    assert bad.status_code == 400 and "PG_SLEEP" in bad.json()["detail"]
    made = post("/api/checks/local-rules", {"text": GOOD})
    assert made.status_code == 201
    pk = made.json()["id"]
    assert (
        post(f"/api/checks/local-rules/{pk}/versions", {"text": GOOD.replace("< 0", "< 1")}).status_code
        == 201
    )
    assert post(f"/api/checks/local-rules/{pk}/rollback", {"number": 1}).json()["number"] == 3
    diff = client.get(f"/api/checks/local-rules/{pk}/diff?a=1&b=2", **auth).json()["diff"]
    assert any(line.startswith("+") and "< 1" in line for line in diff)
    assert post(f"/api/checks/local-rules/{pk}/submit", {}).status_code == 200
    assert (
        post(f"/api/checks/local-rules/{pk}/decision", {"number": 3, "decision": "approve"}).status_code
        == 403
    )
    rejected = post(f"/api/checks/local-rules/{pk}/decision", {"number": 3, "decision": "reject"}, pm_auth)
    assert rejected.status_code == 400 and "理由" in rejected.json()["detail"]
    ok = post(f"/api/checks/local-rules/{pk}/decision", {"number": 3, "decision": "approve"}, pm_auth)
    assert ok.json()["status"] == "approved"
    other = token_for(people["pm_other"])
    assert client.get(f"/api/checks/local-rules/{pk}", **other).status_code == 404
    exported = client.get(f"/api/checks/local-rules/{pk}/export?version=2", **auth).content.decode()
    imported = post("/api/checks/local-rules/import", {"text": exported})
    assert imported.status_code == 201 and imported.json()["latest"]["number"] == 4
    assert (
        LocalRuleVersion.objects.get(rule_id=pk, number=4).text
        == LocalRuleVersion.objects.get(rule_id=pk, number=2).text
    )
    missing = post("/api/checks/local-rules/import", {"text": exported.replace("module: 指标管理\n", "")})
    assert missing.status_code == 400 and "module" in missing.json()["detail"]
    assert LocalRuleVersion.objects.filter(rule_id=pk).count() == 4
    copied = post("/api/checks/local-rules/copy", {"shipped": "BIZ-001"})
    assert copied.status_code == 201 and copied.json()["source_rule"] == "BIZ-001"


def test_command_export_import(people, tmp_path, monkeypatch):
    version = cs.create_rule(people["engineer"], GOOD)
    out = io.StringIO()
    call_command("checks", "rules", "list", "--pack", "local", stdout=out)
    assert "L-TEST-001" in out.getvalue() and "草稿" in out.getvalue()
    call_command("checks", "rules", "export", "--out", str(tmp_path), stdout=io.StringIO())
    path = tmp_path / "L-TEST-001.yaml"
    assert path.read_text(encoding="utf-8").startswith(version.text)
    LocalRule.objects.all().delete()
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("key: [bgt_id]\n", ""), encoding="utf-8")
    with pytest.raises(CommandError, match="缺少字段 key"):
        call_command("checks", "rules", "import", str(path), str(bad), "--actor", "w_engineer")
    assert LocalRule.objects.count() == 0  # one bad file: nothing written
    call_command("checks", "rules", "import", str(path), "--actor", "w_engineer", stdout=io.StringIO())
    assert LocalRule.objects.get().latest.text == version.text
