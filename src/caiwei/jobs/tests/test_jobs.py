"""Job records: progress and log, failures kept, the tick, and a real `caiwei worker` on SQLite and on Redis."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.jobs import runner
from caiwei.jobs.models import Job, JobStatus, WorkerBeat
from caiwei.regions.models import Region, RegionLevel


@runner.job_kind("test.count", "计数测试")
def count_job(ctx):
    total = ctx.params["n"]
    for i in range(1, total + 1):
        if i % 10 == 0:
            ctx.progress(i, total)
    ctx.log(f"数到 {total}")
    return {"summary": f"共 {total}", "n": total}


@runner.job_kind("test.boom", "失败测试")
def boom_job(ctx):
    ctx.progress(1, 3)
    raise RuntimeError("目标库连接失败")


@pytest.mark.django_db
def test_job_runs_with_progress_and_log(users):
    job = runner.start("test.count", user=users["pm"], params={"n": 50})
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.done == 50 and job.total == 50 and job.percent == 100
    assert "数到 50" in job.log and job.result == {"summary": "共 50", "n": 50}
    assert job.created_by == users["pm"]
    assert AuditEvent.objects.filter(
        action=AuditAction.CREATE, object_type="jobs.job", object_id=str(job.pk)
    ).exists()
    # Progress updates are not separate audit events.
    assert not AuditEvent.objects.filter(action=AuditAction.UPDATE, object_type="jobs.job").exists()


@pytest.mark.django_db
def test_failed_job_keeps_error(users):
    job = runner.start("test.boom", user=users["pm"])
    job.refresh_from_db()
    assert (
        job.status == JobStatus.FAILED and "目标库连接失败" in job.error and "失败：目标库连接失败" in job.log
    )
    assert job.done == 1 and job.total == 3 and job.finished_at is not None


@pytest.mark.django_db
def test_unknown_kind_is_refused():
    with pytest.raises(KeyError, match="未知的任务类型"):
        runner.start("nope")


@pytest.mark.django_db
def test_tick_beats_and_runs_hooks():
    calls = []
    hook = runner.on_tick(lambda: calls.append(1))
    failing = runner.on_tick(lambda: 1 / 0)
    try:
        assert not runner.worker_alive()
        runner.tick()
        assert calls == [1] and runner.worker_alive()  # a failing hook does not stop the others or the beat
        assert WorkerBeat.objects.get(name="tick")
    finally:
        runner._TICK_HOOKS.remove(hook)
        runner._TICK_HOOKS.remove(failing)


@pytest.mark.django_db
def test_jobs_page_and_api_show_own_jobs(users, regions, client_for):
    mine = runner.start("test.count", user=users["engineer"], params={"n": 10})
    other = runner.start("test.count", user=users["agent"], params={"n": 10})
    client = client_for(users["engineer"])
    assert [j["id"] for j in client.get("/api/jobs").json()] == [mine.pk]
    assert client.get(f"/jobs/{other.pk}/").status_code == 404
    assert "共 10" in client.get(f"/jobs/{mine.pk}/").content.decode()
    fragment = client.get(f"/jobs/{mine.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="job-status"')
    # A project manager sees the jobs on objects of their regions, not every job: one tied to the league (theirs)
    # is listed, one tied to another league is not, nor another person's job tied to no region.
    league = runner.start("test.count", user=users["agent"], params={"n": 1}, region=regions["152500000"])
    elsewhere = Region.objects.create(
        code="152900000", name="阿拉善盟", level=RegionLevel.CITY, parent=regions["150000000"]
    )
    foreign = runner.start("test.count", user=users["agent"], params={"n": 1}, region=elsewhere)
    seen = {j["id"] for j in client_for(users["pm"]).get("/api/jobs").json()}
    assert league.pk in seen and foreign.pk not in seen and other.pk not in seen
    assert client_for(users["pm"]).get(f"/jobs/{foreign.pk}/").status_code == 404


def _worker(env_extra: dict) -> subprocess.Popen:
    from caiwei.audit.keys import audit_key

    settings_db = connection.settings_dict
    env = dict(os.environ)
    env.pop("CAIWEI_HUEY_IMMEDIATE", None)
    env |= {
        "DJANGO_SETTINGS_MODULE": "caiwei.settings",
        "DATABASE_URL": f"postgres://{settings_db['USER']}@{settings_db['HOST']}:{settings_db['PORT']}/{settings_db['NAME']}",
        "CAIWEI_AUDIT_KEY": audit_key().decode(),
        **env_extra,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "caiwei.cli", "worker", "-w", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _run_through_worker(huey, env_extra) -> Job:
    from caiwei.jobs.tasks import run_job_task

    job = Job.objects.create(kind="audit.verify", title="审计链校验")
    proc = _worker(env_extra)
    try:
        huey._registry.register(
            run_job_task.task_class
        )  # the message names the task; this client must know it
        huey.enqueue(run_job_task.s(job.pk))
        for _ in range(120):
            job.refresh_from_db()
            if job.finished:
                break
            time.sleep(0.25)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert job.status == JobStatus.SUCCEEDED, output
    return job


@pytest.mark.django_db(transaction=True)
def test_worker_on_sqlite_storage(tmp_path):
    from huey import SqliteHuey

    path = tmp_path / "huey.sqlite3"
    huey = SqliteHuey("caiwei", filename=str(path))
    job = _run_through_worker(huey, {"CAIWEI_VAR": str(tmp_path)})
    assert job.result["intact"] is True


@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_storage(tmp_path):
    from huey import PriorityRedisHuey

    url = "redis://127.0.0.1:6379/15"
    name = f"caiwei-test-{os.getpid()}"
    huey = PriorityRedisHuey(name, url=url)
    huey.flush()
    job = _run_through_worker(
        huey, {"CAIWEI_REDIS_URL": url, "CAIWEI_HUEY_NAME": name, "CAIWEI_VAR": str(tmp_path)}
    )
    assert job.result["intact"] is True
    huey.flush()
