"""Runs: the tick makes exactly one run per due slot (twice, late); the automated probe item is probed against a
real local HTTP service; the manual item is ticked by an engineer with a note and a screenshot; the run is 完成 when
every item has a result; an abnormal item opens a ticket; the report has its sections; region scoping."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from caiwei.bizcalendar.engine import is_business_day
from caiwei.inspections import report, services
from caiwei.inspections.models import Plan, Run, RunItem

from .conftest import OLD, png_bytes

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")


def business_day_at(hour: int) -> datetime:
    """A recent business day of the workday calendar at ``hour`` (Beijing)."""
    from caiwei.monitor.services import calendar_spec

    spec = calendar_spec("workday")
    day = datetime.now(TZ).date() - timedelta(days=1)
    while not is_business_day(spec, day):
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, 30, tzinfo=TZ)


def test_tick_is_idempotent_and_catches_up_late(plan):
    now = business_day_at(16)
    first = services.tick(now=now, start_jobs=False)
    slots_today = [r.slot.astimezone(TZ) for r in first if r.slot.astimezone(TZ).date() == now.date()]
    assert sorted(s.hour for s in slots_today) == [9, 15]
    # the 09:00 run has both items, the 15:00 run only the twice-a-day one
    morning = Run.objects.get(plan=plan, slot=now.replace(hour=9, minute=0))
    assert sorted(morning.items.values_list("name", flat=True)) == ["服务可用性", "模拟业务操作"]
    assert list(
        Run.objects.get(plan=plan, slot=now.replace(hour=15, minute=0)).items.values_list("name", flat=True)
    ) == ["服务可用性"]
    count = Run.objects.count()
    assert services.tick(now=now, start_jobs=False) == []
    assert services.tick(now=now + timedelta(minutes=1), start_jobs=False) == []
    assert Run.objects.count() == count
    # Each run matches one due slot of the last days, nothing more.
    due = services.plan_slots(plan, now.date() - timedelta(days=services.LOOKBACK_DAYS), now.date())
    assert {r.slot for r in Run.objects.filter(plan=plan)} == {s for s in due if s <= now}
    # A slot that has not come yet makes no run
    assert not Run.objects.filter(slot__gt=now).exists()
    # nor one before the plan existed: a new plan starts without a backlog
    fresh = Plan.objects.create(
        region=plan.region, system=plan.system, name="新计划", valid_from=plan.valid_from, created_at=now
    )
    fresh.items.create(name="模拟业务操作", kind="manual", times="09:00,15:00")
    created = {r.slot for r in services.tick(now=now, start_jobs=False)}
    assert created == {now.replace(hour=9, minute=0), now.replace(hour=15, minute=0)}  # its first day only


def test_a_run_with_a_real_probe_and_a_manual_item(plan, users, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    now = business_day_at(10)
    [run] = [r for r in services.tick(now=now) if r.slot == now.replace(hour=9, minute=0)]
    auto = run.items.get(kind="probe")
    manual = run.items.get(kind="manual")
    # The worker (immediate here) probed the local HTTP service.
    assert auto.result == RunItem.Result.OK, auto.notes
    [probe] = auto.evidence["probes"]
    assert probe["ok"] and probe["latency_ms"] is not None and "200" in probe["message"]
    run.refresh_from_db()
    assert run.status == Run.Status.OPEN and manual.result == ""
    engineer = users["engineer"]
    # Bad input: Chinese, naming the field
    with pytest.raises(ValidationError) as bad:
        services.record_manual(engineer, manual, "异常吧")
    assert "result" in bad.value.message_dict
    with pytest.raises(ValidationError) as bad:
        services.record_manual(engineer, manual, "ok", "", [SimpleUploadedFile("x.exe", b"MZ\x90\x00")])
    assert "files" in bad.value.message_dict
    with pytest.raises(ValidationError):
        services.record_manual(engineer, auto, "ok")  # an automated result is the probe's
    with pytest.raises(PermissionDenied):
        services.record_manual(users["finance"], manual, "ok")
    shot = SimpleUploadedFile("支付成功.png", png_bytes(), content_type="image/png")
    services.record_manual(engineer, manual, "ok", "测试凭证录入、撤销均正常", [shot])
    run.refresh_from_db()
    assert run.status == Run.Status.DONE and run.finished_by == engineer
    assert run.on_time is False  # the slot was a past day's: finished after its grace
    assert manual.shots.count() == 1
    from caiwei.audit.models import AuditEvent

    changes = AuditEvent.objects.filter(
        action="update", object_id=str(manual.pk), object_type__contains="runitem"
    )
    assert any((e.after or {}).get("result") == "ok" for e in changes)
    services.finish(engineer, run, "各项正常。")
    docx = report.render_docx(run)
    if os.environ.get("CAIWEI_KEEP_REPORT"):  # look at it rendered: libreoffice --headless --convert-to pdf
        Path(os.environ["CAIWEI_KEEP_REPORT"]).write_bytes(docx)
    text = zipfile.ZipFile(io.BytesIO(docx)).read("word/document.xml").decode()
    for section in (
        "巡检报告",
        "一、巡检范围",
        "二、巡检结果",
        "三、检查明细与证据",
        "四、近期趋势",
        "五、巡检结论",
        "六、签字确认",
    ):
        assert section in text, section
    assert "支付前置服务" in text and "测试凭证录入、撤销均正常" in text and "各项正常。" in text
    media = [n for n in zipfile.ZipFile(io.BytesIO(docx)).namelist() if n.startswith("word/media/")]
    assert len(media) == 2  # the screenshot and the chart


def test_on_time_and_late_in_the_calendar_and_the_kpi(plan, users):
    now = business_day_at(16)
    services.tick(now=now, start_jobs=False)
    morning = Run.objects.get(plan=plan, slot=now.replace(hour=9, minute=0))
    for item in morning.items.all():
        RunItem.objects.filter(pk=item.pk).update(result="ok")
    Run.objects.filter(pk=morning.pk).update(status="done", finished_at=morning.slot + timedelta(minutes=30))
    slots = {s.at: s for s in services.schedule(users["engineer"], now.date(), now.date())}
    assert slots[morning.slot].state(now) == "done"
    afternoon = slots[now.replace(hour=15, minute=0)]
    assert afternoon.state(now) == "open"  # 15:00 + 120 minutes of grace: not late at 16:30
    assert afternoon.state(now + timedelta(hours=2)) == "late"
    tally = services.month_tally(users["engineer"], now.year, now.month, now)
    assert tally.met >= 1 and tally.pending == 1
    # a unit user of a county holds no inspect.view and sees nothing
    assert services.schedule(users["unit"], now.date(), now.date()) == []


def test_abnormal_item_opens_one_ticket(plan, users, http_service):
    from caiwei.monitor.models import Item

    Item.objects.update(config={"url": f"{http_service}/fail", "expect_status": "200"})
    now = business_day_at(10)
    [run] = [r for r in services.tick(now=now) if r.slot == now.replace(hour=9, minute=0)]
    auto = run.items.get(kind="probe")
    assert auto.result == RunItem.Result.ABNORMAL and "503" in auto.notes
    ticket = services.open_ticket(users["engineer"], auto)
    assert ticket.channel == "inspection" and ticket.region == plan.region and "服务可用性" in ticket.title
    with pytest.raises(ValidationError):
        services.open_ticket(users["engineer"], auto)
    with pytest.raises(ValidationError):
        services.open_ticket(users["engineer"], run.items.get(kind="manual"))


def test_region_scoping(plan, make_user):
    from caiwei.accounts.roles import Role

    outsider = make_user("o_engineer", Role.ENGINEER, regions=("152502000",))
    own = make_user("c_engineer", Role.ENGINEER, regions=("152500000",))
    services.tick(now=business_day_at(10), start_jobs=False)
    assert not services.visible_plans(outsider).exists() and not services.visible_runs(outsider).exists()
    assert services.visible_plans(own).count() == 1 and services.visible_runs(own).exists()
    run = services.visible_runs(own).first()
    with pytest.raises(PermissionDenied):
        services.record_manual(outsider, run.items.get(kind="manual"), "ok")
    with pytest.raises(PermissionDenied):
        services.save_plan(
            outsider, Plan(region=plan.region, system=plan.system, name="越权", valid_from=plan.valid_from)
        )


def test_a_data_check_item_runs_the_packs_on_the_target_database(regions, users, settings, tmp_path):
    """每天用脚本检查异常数据: a generated finance database with planted faults; the check item runs the rule packs
    and its evidence carries the findings."""
    from datetime import date

    from caiwei.checks.models import Target, TargetDatabase
    from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

    path = tmp_path / "finance.sqlite3"
    generate(f"sqlite:///{path}", GenerateSpec(payments=400, seed=7, faults=parse_faults("all=1")))
    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    target = Target.objects.create(name="财政库", system="国库集中支付", region=regions["152500000"])
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(path), as_of=date(2026, 12, 31)
    )
    plan = Plan.objects.create(
        region=regions["152500000"],
        system="国库集中支付",
        name="异常数据巡检",
        valid_from=date(2020, 1, 1),
        created_at=OLD,
    )
    item = services.PlanItem(plan=plan, name="异常数据检查", kind="check", times="08:00", database=database)
    services.save_item(users["engineer"], item)
    now = business_day_at(9)
    services.tick(now=now, start_jobs=False)
    run = Run.objects.get(plan=plan, slot=now.replace(hour=8, minute=0))
    services.start_automated(run)  # the worker's job (immediate here)
    checked = run.items.get()
    assert checked.result == RunItem.Result.ABNORMAL, checked.notes
    evidence = checked.evidence
    assert evidence["status"] == "done" and evidence["rules_total"] > 10
    assert evidence["rules_failing"] > 0 and evidence["findings"] > 0
    assert f"{evidence['findings']} 条记录" in checked.notes
    run.refresh_from_db()
    assert run.status == Run.Status.DONE  # an automated-only run is complete once the worker has judged it


@examples(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 4 * 24 * 60), min_size=1, max_size=6))
def test_ticks_at_any_instants_in_any_order_make_one_run_per_due_slot(plan, minutes):
    """However often, late or out of order the tick runs: exactly the due slots that have come, once each."""
    Run.objects.all().delete()
    start = business_day_at(0).replace(minute=0) - timedelta(days=4)
    expected = set()
    for offset in minutes:
        now = start + timedelta(minutes=offset)
        services.tick(now=now, start_jobs=False)
        due = services.plan_slots(plan, now.date() - timedelta(days=services.LOOKBACK_DAYS), now.date())
        expected |= {s for s in due if s <= now}
    slots = list(Run.objects.filter(plan=plan).values_list("slot", flat=True))
    assert len(slots) == len(set(slots)) and set(slots) == expected
