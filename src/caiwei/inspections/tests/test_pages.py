"""Pages, API and CLI flows: a plan and its items kept on the pages (bad input answered in Chinese naming the
field), the calendar, the API's plan → item → tick → record → finish → report, and ``caiwei inspect``."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from caiwei.inspections.models import Plan, Run

from .conftest import OLD

pytestmark = pytest.mark.django_db
LEAGUE = "152500000"


def test_plan_pages(users, regions, client_for):
    client = client_for(users["engineer"])
    assert client.get("/inspections/plans/new/").status_code == 200
    response = client.post(
        "/inspections/plans/new/",
        {
            "region": regions[LEAGUE].pk,
            "system": "国库集中支付",
            "name": "支付系统巡检",
            "valid_from": "2026-01-01",
            "valid_until": "2025-12-31",
            "calendar": "workday",
            "grace_minutes": 120,
            "enabled": "on",
        },
    )
    assert response.status_code == 200 and "失效日期不能早于生效日期" in response.content.decode()
    response = client.post(
        "/inspections/plans/new/",
        {
            "region": regions[LEAGUE].pk,
            "system": "国库集中支付",
            "name": "支付系统巡检",
            "valid_from": "2026-01-01",
            "calendar": "workday",
            "grace_minutes": 120,
            "enabled": "on",
        },
    )
    plan = Plan.objects.get(name="支付系统巡检")
    assert response.status_code == 302
    base = {
        "name": "模拟业务操作",
        "kind": "manual",
        "frequency": "weekly",
        "weekday": 4,
        "nth": 1,
        "position": 0,
    }
    response = client.post(f"/inspections/plans/{plan.pk}/item/", {**base, "times": "9点"}, follow=True)
    assert "时:分" in response.content.decode() and not plan.items.exists()
    response = client.post(
        f"/inspections/plans/{plan.pk}/item/", {**base, "kind": "check", "times": "09:00"}, follow=True
    )
    assert "目标数据库" in response.content.decode() and not plan.items.exists()
    client.post(f"/inspections/plans/{plan.pk}/item/", {**base, "times": "10:00", "key_frequency": "daily"})
    item = plan.items.get()
    assert item.frequency_label() == "每周五 10:00（遇节假日顺延）；关键时期每个工作日 10:00"
    page = client.get(f"/inspections/plans/{plan.pk}/").content.decode()
    assert "模拟业务操作" in page and "每周五 10:00" in page
    assert "每周五" in client.get("/inspections/plans/").content.decode()
    # the finance section sees the plans but cannot change them
    finance = client_for(users["finance"])
    assert finance.get(f"/inspections/plans/{plan.pk}/").status_code == 200
    assert finance.post(f"/inspections/plans/{plan.pk}/item/", {**base, "times": "10:00"}).status_code == 403
    client.post(f"/inspections/plans/{plan.pk}/item/", {"item": item.pk, "delete": "1"})
    assert not plan.items.exists()


def test_calendar_page_shows_due_late_and_done(plan, users, client_for):
    client = client_for(users["engineer"])
    monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday() + 7)  # last week: all past
    body = client.get(f"/inspections/?week={monday.isoformat()}").content.decode()
    assert "逾期未完成" in body and "支付系统日常巡检" in body
    assert client.post("/inspections/tick/").status_code == 302
    body = client.get(f"/inspections/?week={monday.isoformat()}").content.decode()
    assert "data-run=" in body
    assert client.get("/inspections/?week=不是日期").status_code == 200
    assert "巡检日历" in client.get("/monitor/").content.decode()


def test_api_flow(plan, users, token_for, client_for, regions, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    headers = token_for(users["engineer"])
    client = client_for(users["engineer"])
    response = client.post(
        "/api/inspections/plans",
        json.dumps(
            {"region": LEAGUE, "system": "国库集中支付", "name": "接口巡检", "valid_from": "2020-01-01"}
        ),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201, response.content
    new = response.json()["id"]
    Plan.objects.filter(pk=new).update(created_at=OLD)  # an older plan: its past slots are due
    bad = client.post(
        f"/api/inspections/plans/{new}/items",
        json.dumps({"name": "接口", "kind": "manual", "times": "25:00"}),
        content_type="application/json",
        **headers,
    )
    assert bad.status_code == 400 and "时:分" in bad.json()["errors"]["times"][0]
    ok = client.post(
        f"/api/inspections/plans/{new}/items",
        json.dumps({"name": "银行接口交换频率", "kind": "manual", "times": "09:00,15:00"}),
        content_type="application/json",
        **headers,
    )
    assert ok.status_code == 201 and ok.json()["items"][0]["frequency_label"].startswith(
        "每个工作日 09:00、15:00"
    )
    calendar = client.get("/api/inspections/calendar?days=14", **headers).json()
    assert {c["plan"] for c in calendar} >= {plan.pk, new}
    created = client.post("/api/inspections/tick", **headers).json()["created"]
    assert created and client.post("/api/inspections/tick", **headers).json()["created"] == []
    run = Run.objects.filter(plan_id=new).latest("slot")
    item = run.items.get()
    wrong = client.post(
        f"/api/inspections/runs/{run.pk}/items/{item.pk}",
        json.dumps({"result": "abnormal", "notes": ""}),
        content_type="application/json",
        **headers,
    )
    assert wrong.status_code == 400 and "说明" in wrong.json()["errors"]["notes"][0]
    done = client.post(
        f"/api/inspections/runs/{run.pk}/items/{item.pk}",
        json.dumps({"result": "ok", "notes": "交换正常"}),
        content_type="application/json",
        **headers,
    ).json()
    assert done["status"] == "done" and done["items"][0]["result_label"] == "正常"
    report = client.get(f"/api/inspections/runs/{run.pk}/report", **headers)
    assert report.status_code == 200
    assert "二、巡检结果" in zipfile.ZipFile(io.BytesIO(report.content)).read("word/document.xml").decode()
    # another region's user: the run is not there
    outsider = token_for(users["unit"])
    assert client.get(f"/api/inspections/runs/{run.pk}", **outsider).status_code in (403, 404)


def test_cli(plan, tmp_path):
    out = io.StringIO()
    call_command("inspect", "run", "--plan", str(plan.pk), "--due", stdout=out)
    text = out.getvalue()
    assert "生成到期巡检" in text and "正常 1" in text
    run = Run.objects.filter(plan=plan).latest("slot")
    target = tmp_path / "r.docx"
    call_command("inspect", "report", str(run.pk), "--out", str(target), stdout=io.StringIO())
    assert zipfile.is_zipfile(target)
    before = Run.objects.count()
    call_command("inspect", "run", "--due", stdout=io.StringIO())
    assert Run.objects.count() == before


def test_kpi_row(plan, users):
    from caiwei.desk.kpi import monthly_kpis
    from caiwei.inspections.services import tick

    now = datetime(2026, 11, 20, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Friday, a business day
    tick(now=now, start_jobs=False)
    row = {r["key"]: r for r in monthly_kpis(users["pm"], "2026-11", now=now)["rates"]}["inspections"]
    assert row["label"] == "巡检完成率"
    # nothing was finished: 15 business days (2–20 Nov) × 2 slots (09:00, 15:00); the 20th's 15:00 slot is still
    # within its grace (进行中), the other 29 are missed
    assert row["due"] == 29
    assert row["pending"] == 1 and row["met"] == 0 and row["verdict"] == "未达标"
    # one run finished within its grace counts as met
    run = Run.objects.filter(slot__gte=now - timedelta(days=3)).earliest("slot")
    run.items.update(result="ok")
    Run.objects.filter(pk=run.pk).update(status="done", finished_at=run.slot + timedelta(minutes=5))
    again = {r["key"]: r for r in monthly_kpis(users["pm"], "2026-11", now=now)["rates"]}["inspections"]
    assert again["met"] == 1 and again["due"] == row["due"]
    # a unit user sees no plan: nothing due
    assert {r["key"]: r for r in monthly_kpis(users["unit"], "2026-11", now=now)["rates"]}["inspections"][
        "due"
    ] == 0
