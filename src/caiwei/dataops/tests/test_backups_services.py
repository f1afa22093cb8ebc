"""Backups from Django: a registered target database (Target + TargetDatabase) backed up, restored by range and
drilled on SQLite, PostgreSQL and MariaDB; alert tickets; the refusal of a changed file; pages, API, KPI."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from django.core.exceptions import ValidationError

from caiwei.accounts.roles import Role
from caiwei.checks.models import Target, TargetDatabase
from caiwei.conftest import scratch_db
from caiwei.dataops import services_backups as services
from caiwei.dataops.models_backups import Backup, BackupSchedule, DrillRecord, RangeRestore
from caiwei.dataops.tests.test_backups_engine import (
    drop_source,
    fill,
    make_source,
    read,
    run_as_written,
    vouchers,
)
from caiwei.desk.models import Ticket

LEAGUE, COUNTY = "152500000", "152502000"


@pytest.fixture
def world(regions, make_user, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.CAIWEI_SQLITE_TARGET_DIR = str(tmp_path)
    settings.CAIWEI_BACKUP_SCRATCH_PREFIX = scratch_db("bks")[:40]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    target = Target.objects.create(name="预算执行系统", system="国库集中支付", region=regions[LEAGUE])
    return {
        "target": target,
        "engineer": make_user("b_engineer", Role.ENGINEER, regions=(LEAGUE,)),
        "county": make_user("b_county", Role.ENGINEER, Role.PROJECT_MANAGER, regions=(COUNTY,)),
        "agent": make_user("b_agent", Role.AGENT, regions=(LEAGUE,)),
        "tmp": tmp_path,
    }


def register(world, conn, name="业务库") -> TargetDatabase:
    dialect = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}[conn.dialect]
    return TargetDatabase.objects.create(
        target=world["target"],
        name=name,
        dialect=dialect,
        host=conn.host,
        port=conn.port,
        database=conn.database,
        username=conn.user,
        as_of=date(2026, 12, 31),
    )


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def live(request, world):
    conn = make_source(request.param, world["tmp"], scratch_db("bks_live")[:50])
    fill(conn, 120)
    yield conn, register(world, conn)
    drop_source(conn)


# --- backups and alerts ---------------------------------------------------------------------------------------------


def test_backup_from_the_page_records_file_checksum_and_counts(live, world, client_for):
    conn, database = live
    client = client_for(world["engineer"])
    response = client.post("/data/backups/run/", {"database": database.pk, "tables": ""})
    item = Backup.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/backups/{item.pk}/"
    assert item.status == Backup.Status.DONE and item.counts == {"agencies": 40, "vouchers": 120}
    assert item.path.startswith(str(world["tmp"] / "var" / "backups" / f"target-{world['target'].pk}"))
    services.usable_backup(item)
    page = client.get(f"/data/backups/{item.pk}/").content.decode()
    assert item.sha256 in page and 'data-table="vouchers"' in page
    assert client.get("/data/backups/").status_code == 200
    # another region's account cannot reach it
    assert client_for(world["county"]).get(f"/data/backups/{item.pk}/").status_code == 404


def test_changed_file_is_refused_for_restore_and_drill(world, client_for):
    conn = make_source("sqlite", world["tmp"], "refused")
    fill(conn, 30)
    database = register(world, conn)
    item = services.start_backup(world["engineer"], database, inline=True)
    with open(item.path, "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValidationError, match="校验失败"):
        services.start_restore(world["engineer"], item, "vouchers", "")
    with pytest.raises(ValidationError, match="校验失败"):
        services.start_drill(world["engineer"], database, item, inline=True)
    assert not RangeRestore.objects.exists() and not DrillRecord.objects.exists()
    response = client_for(world["engineer"]).post(f"/data/backups/{item.pk}/restore/", {"table": "vouchers"})
    assert response.status_code == 302 and not RangeRestore.objects.exists()


def test_failing_schedule_opens_one_ticket_until_it_succeeds(world, settings):
    conn = make_source("sqlite", world["tmp"], "flaky")
    fill(conn, 10)
    good = register(world, conn)
    bad = TargetDatabase.objects.create(
        target=world["target"],
        name="备库",
        dialect="postgresql",
        host="127.0.0.1",
        port=1,
        database="nothing",
        username="postgres",
    )
    schedule = BackupSchedule.objects.create(database=bad, cron="0 2 * * *", created_by=world["engineer"])
    for _ in range(3):
        item = services.start_backup(None, bad, schedule=schedule, inline=True)
        assert item.status == Backup.Status.FAILED and "连接数据库失败" in item.error
    tickets = Ticket.objects.filter(module="数据库备份")
    assert tickets.count() == 1
    ticket = tickets.get()
    assert ticket.ticket_type == "故障" and ticket.region == world["target"].region
    assert set(Backup.objects.filter(schedule=schedule).values_list("alert_ticket", flat=True)) == {ticket.pk}
    # another schedule failing is its own streak; a manual backup of the good database opens none
    other = BackupSchedule.objects.create(database=bad, cron="0 3 * * *")
    services.start_backup(None, bad, schedule=other, inline=True)
    assert tickets.count() == 2
    services.start_backup(world["engineer"], good, inline=True)
    assert tickets.count() == 2
    # success ends the streak: the next failure opens a new ticket
    TargetDatabase.objects.filter(pk=bad.pk).update(
        dialect="sqlite", host="", port=None, database=good.database, username=""
    )
    bad.refresh_from_db()
    assert services.start_backup(None, bad, schedule=schedule, inline=True).status == Backup.Status.DONE
    TargetDatabase.objects.filter(pk=bad.pk).update(
        dialect="postgresql", host="127.0.0.1", port=1, database="nothing"
    )
    bad.refresh_from_db()
    services.start_backup(None, bad, schedule=schedule, inline=True)
    assert tickets.count() == 3


def test_schedule_fires_on_tick_and_retention_prunes(world, settings):
    from datetime import timedelta

    from django.utils import timezone

    conn = make_source("sqlite", world["tmp"], "sched")
    fill(conn, 10)
    database = register(world, conn)
    schedule = services.save_schedule(
        world["engineer"], BackupSchedule(database=database, cron="*/5 * * * *", keep_count=2)
    )
    assert schedule.next_run_at > timezone.now()
    with pytest.raises(ValidationError, match="cron"):
        services.save_schedule(
            world["engineer"], BackupSchedule(database=database, cron="nope", keep_count=1)
        )
    for n in range(4):
        BackupSchedule.objects.filter(pk=schedule.pk).update(
            next_run_at=timezone.now() - timedelta(minutes=1)
        )
        assert services.fire_schedules() == 1
        Backup.objects.filter(schedule=schedule, pruned_at=None).update(
            finished_at=timezone.now() - timedelta(hours=4 - n)
        )
    kept = Backup.objects.filter(schedule=schedule, status=Backup.Status.DONE)
    pruned = Backup.objects.filter(schedule=schedule, status=Backup.Status.PRUNED)
    assert kept.count() == 2 and pruned.count() == 2
    from pathlib import Path

    assert all(Path(b.path).is_file() for b in kept) and not any(Path(b.path).exists() for b in pruned)


# --- range restore ---------------------------------------------------------------------------------------------------


def test_range_restore_diff_grid_and_hand_over(live, world, client_for, monkeypatch):
    conn, database = live
    item = services.start_backup(world["engineer"], database, inline=True)
    before = read(conn)
    e = conn.engine()
    with e.begin() as c:
        c.execute(vouchers.update().where(vouchers.c.id.in_([3, 6])).values(payee="改了"))  # region 152501000
        c.execute(vouchers.update().where(vouchers.c.id == 4).values(payee="范围外"))  # another region
        c.execute(vouchers.delete().where(vouchers.c.id == 9))
        c.execute(vouchers.insert().values(id=999, region="152501000", payee="新增", amount=Decimal("1.00")))
    e.dispose()
    client = client_for(world["engineer"])
    response = client.post(
        f"/data/backups/{item.pk}/restore/", {"table": "vouchers", "condition": "region = '152501000'"}
    )
    restore = RangeRestore.objects.get()
    assert response["Location"] == f"/data/backups/restores/{restore.pk}/"
    assert restore.status == RangeRestore.Status.READY, restore.error
    assert restore.summary | {"seconds": 0} == restore.summary | {
        "changed": 2,
        "only_backup": 1,
        "only_live": 1,
        "seconds": 0,
    }
    kinds = {tuple(r["key"]): r["kind"] for r in restore.rows}
    assert kinds == {(3,): "changed", (6,): "changed", (9,): "only_backup", (999,): "only_live"}
    assert all(set(r["columns"]) == {"payee"} for r in restore.rows if r["kind"] == "changed")
    page = client.get(f"/data/backups/restores/{restore.pk}/").content.decode()
    assert page.count('name="row"') == 4 and "生成数据变更" in page
    calls = []

    class Change:
        pk = 41

    def hand_over(**kw):
        calls.append(kw)
        return Change()

    monkeypatch.setattr(services, "hand_over", hand_over)
    chosen = [n for n, r in enumerate(restore.rows) if r["key"] in ([3], [9])]
    response = client.post(f"/data/backups/restores/{restore.pk}/change/", {"row": chosen})
    restore.refresh_from_db()
    assert restore.change_id == 41 and len(calls) == 1
    call = calls[0]
    assert (
        call["origin_ref"] == restore.pk
        and call["database"] == database
        and call["author"] == world["engineer"]
    )
    # the SQL handed over, applied to today's table in a transaction, gives back the backup's rows 3 and 9 only
    e = conn.engine()
    with e.connect() as c:
        tx = c.begin()
        run_as_written(c, call["sql"].rstrip(";").split(";\n"))
        now = {r.id: tuple(r[1:]) for r in c.execute(sa.select(vouchers))}
        tx.rollback()
    e.dispose()
    assert now[3] == before[3] and now[9] == before[9]
    assert now[6] != before[6] and 999 in now  # not chosen: left as today
    # closing drops the staging database
    staging = restore.staging_db
    services.close_restore(world["engineer"], restore)
    restore.refresh_from_db()
    assert restore.status == RangeRestore.Status.CLOSED and restore.staging_db == ""
    if conn.dialect != "sqlite":
        server = services.staging_server(database)
        e = server.engine()
        with e.connect() as c:
            if conn.dialect == "postgresql":
                left = c.exec_driver_sql(
                    "SELECT count(*) FROM pg_database WHERE datname = %(n)s", {"n": staging}
                ).scalar()
            else:
                left = c.exec_driver_sql(
                    "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %(n)s",
                    {"n": staging},
                ).scalar()
        e.dispose()
        assert staging and left == 0


def test_bad_condition_answers_400_and_writes_nothing(world, client_for, token_for):
    conn = make_source("sqlite", world["tmp"], "cond")
    fill(conn, 10)
    database = register(world, conn)
    item = services.start_backup(world["engineer"], database, inline=True)
    headers = token_for(world["engineer"])
    client = client_for(world["engineer"])
    for body, problem in (
        ({"table": "vouchers", "condition": "id IN (SELECT 1)"}, "子查询"),
        ({"table": "vouchers", "condition": "nothing = 1"}, "没有列"),
        ({"table": "nothing", "condition": ""}, "没有表"),
    ):
        response = client.post(
            f"/api/data/backups/{item.pk}/restores", body, content_type="application/json", **headers
        )
        assert response.status_code == 400 and problem in response.json()["detail"], response.content
    assert not RangeRestore.objects.exists()


def test_expired_staging_is_dropped(world):
    from datetime import timedelta

    from django.utils import timezone

    conn = make_source("postgresql", world["tmp"], scratch_db("bks_exp")[:50])
    try:
        fill(conn, 10)
        database = register(world, conn)
        item = services.start_backup(world["engineer"], database, inline=True)
        restore = services.start_restore(world["engineer"], item, "agencies", "", inline=True)
        assert restore.staging_db
        RangeRestore.objects.filter(pk=restore.pk).update(created_at=timezone.now() - timedelta(days=10))
        assert services.expire_staging() == 1
        restore.refresh_from_db()
        assert restore.status == RangeRestore.Status.CLOSED and restore.staging_db == ""
    finally:
        drop_source(conn)


# --- drills ----------------------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sandbox(request, world):
    from caiwei.sandbox.generator import GenerateSpec, generate

    conn = make_source(request.param, world["tmp"], scratch_db("bks_sbx")[:50])
    generate(conn.url().render_as_string(hide_password=False), GenerateSpec(payments=150, seed=3))
    yield conn, register(world, conn, "演练库")
    drop_source(conn)


def test_drill_report_counts_match_the_backup(sandbox, world, client_for):
    from docx import Document

    conn, database = sandbox
    item = services.start_backup(world["engineer"], database, inline=True)
    client = client_for(world["engineer"])
    response = client.post(
        "/data/backups/drills/run/",
        {
            "database": database.pk,
            "rto_goal_minutes": 30,
            "rpo_goal_hours": 24,
            "packs": "quota,duplicate_payment",
        },
    )
    drill = DrillRecord.objects.get()
    assert response["Location"] == f"/data/backups/drills/{drill.pk}/"
    assert drill.status == DrillRecord.Status.PASSED, drill.error
    assert drill.backup == item and drill.rto_seconds > 0 and drill.rpo_seconds >= 0
    assert {c["table"]: c["restored"] for c in drill.counts} == item.counts
    assert drill.checks and not [c for c in drill.checks if c["error"]]  # the packs ran on the restored copy
    download = client.get(f"/data/backups/drills/{drill.pk}/report/")
    assert download.status_code == 200
    doc = Document(io.BytesIO(b"".join(download.streaming_content)))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "灾难恢复演练恢复报告" in text and "演练负责人（签字）" in text and "本次演练恢复成功" in text
    counts = next(
        t for t in doc.tables if t.rows[0].cells[0].text == "表" and t.rows[0].cells[1].text == "备份时行数"
    )
    in_report = {r.cells[0].text: (int(r.cells[1].text), int(r.cells[2].text)) for r in counts.rows[1:]}
    assert in_report == {t: (n, n) for t, n in item.counts.items()}
    assert item.sha256 in [c.text for t in doc.tables for r in t.rows for c in r.cells]
    page = client.get(f"/data/backups/drills/{drill.pk}/").content.decode()
    assert "通过" in page and client.get("/data/backups/drills/").status_code == 200


def test_drill_kpi_counts_finished_drills(world, users):
    from caiwei.desk.kpi import monthly_kpis

    conn = make_source("sqlite", world["tmp"], "kpi")
    fill(conn, 5)
    database = register(world, conn)
    services.start_backup(world["engineer"], database, inline=True)
    for _ in range(2):
        services.start_drill(world["engineer"], database, packs="quota", inline=True)
    row = next(r for r in monthly_kpis(users["pm"])["rates"] if r["key"] == "dr_drills")
    assert row["label"] == "灾难恢复演练次数" and row["met"] == row["due"] == 2 and row["pending"] == 2
    assert services.drills_in_year(world["county"], date.today().year) == 0  # another region sees none


def test_cli_backup_restore_drill(world, tmp_path):
    from django.core.management import call_command

    conn = make_source("sqlite", world["tmp"], "cli")
    fill(conn, 20)
    database = register(world, conn)
    out = io.StringIO()
    call_command("data", "backup", "run", str(database.pk), stdout=out)
    item = Backup.objects.get()
    assert item.sha256 in out.getvalue()
    call_command("data", "backup", "list", stdout=out)
    e = conn.engine()
    with e.begin() as c:
        c.execute(vouchers.update().where(vouchers.c.id == 2).values(payee="x"))
    e.dispose()
    out = io.StringIO()
    call_command(
        "data", "restore", str(item.pk), "--table", "vouchers", "--where", "id < 5", "--close", stdout=out
    )
    assert "内容不同 1" in out.getvalue()
    report = tmp_path / "out.docx"
    call_command(
        "data",
        "drill",
        f"{world['target'].name}/业务库",
        "--report",
        str(report),
        "--packs",
        "quota",
        stdout=out,
    )
    assert report.read_bytes()[:2] == b"PK"


def test_api_backup_drill_and_report(world, client_for, token_for):
    conn = make_source("sqlite", world["tmp"], "api")
    fill(conn, 15)
    database = register(world, conn)
    headers = token_for(world["engineer"])
    client = client_for(world["engineer"])

    def call(method, url, body=None):
        kw = {"content_type": "application/json"} if body is not None else {}
        return (
            getattr(client, method)(url, body, **kw, **headers)
            if body is not None
            else getattr(client, method)(url, **headers)
        )

    created = call("post", "/api/data/backups", {"database": database.pk})
    assert created.status_code == 201, created.content
    backup = created.json()
    assert backup["status"] == "done" and backup["counts"] == {"agencies": 40, "vouchers": 15}
    assert call("get", f"/api/data/backups/{backup['id']}").json()["sha256"] == backup["sha256"]
    assert [b["id"] for b in call("get", "/api/data/backups").json()] == [backup["id"]]
    assert call("post", "/api/data/backups", {"database": 999999}).status_code == 404
    schedule = call("post", "/api/data/backups/schedules", {"database": database.pk, "cron": "0 61 * * *"})
    assert schedule.status_code == 400 and "cron" in schedule.json()["detail"]
    drill = call("post", "/api/data/backups/drills", {"database": database.pk, "packs": "quota"})
    assert drill.status_code == 201 and drill.json()["status"] == "passed", drill.content
    report = call("get", f"/api/data/backups/drills/{drill.json()['id']}/report")
    assert report.status_code == 200 and b"".join(report.streaming_content)[:2] == b"PK"
    # a county engineer sees none of it
    other = token_for(world["county"])
    assert client_for(world["county"]).get(f"/api/data/backups/{backup['id']}", **other).status_code == 404
    assert (
        client_for(world["agent"])
        .post(
            "/api/data/backups",
            {"database": database.pk},
            content_type="application/json",
            **token_for(world["agent"]),
        )
        .status_code
        == 403
    )
