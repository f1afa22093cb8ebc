"""Job runner: a registry of job kinds, the huey task that runs them, and the periodic tick."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from caiwei.audit.context import acting_as

from .models import Job, JobStatus, WorkerBeat

log = logging.getLogger(__name__)

JobFunc = Callable[["JobContext"], Any]
_KINDS: dict[str, tuple[str, JobFunc]] = {}
_TICK_HOOKS: list[Callable[[], None]] = []
BEAT_STALE_AFTER = timedelta(minutes=3)


def job_kind(kind: str, label: str):
    """Register a function as a job kind; it receives a JobContext and returns a JSON-able result."""

    def decorator(fn: JobFunc) -> JobFunc:
        _KINDS[kind] = (label, fn)
        return fn

    return decorator


def on_tick(fn: Callable[[], None]) -> Callable[[], None]:
    """Register a hook the periodic tick calls each minute (cron schedules of later capabilities)."""
    _TICK_HOOKS.append(fn)
    return fn


def kind_label(kind: str) -> str:
    return _KINDS[kind][0] if kind in _KINDS else kind


class JobContext:
    def __init__(self, job: Job):
        self.job = job
        self.params = job.params

    def progress(self, done: int, total: int | None = None) -> None:
        self.job.done = done
        if total is not None:
            self.job.total = total
        Job.objects.filter(pk=self.job.pk).update(done=self.job.done, total=self.job.total)

    def log(self, line: str) -> None:
        stamp = timezone.localtime().strftime("%H:%M:%S")
        self.job.log += f"[{stamp}] {line}\n"
        Job.objects.filter(pk=self.job.pk).update(log=self.job.log)


def start(kind: str, *, user=None, title: str = "", params: dict | None = None, region=None) -> Job:
    """Create the job record and queue it; the worker picks it up. ``region`` is the region of what the job works
    on (a check run's target): the project managers of that region see it too."""
    if kind not in _KINDS:
        raise KeyError(f"未知的任务类型：{kind}")
    job = Job.objects.create(
        kind=kind, title=title or _KINDS[kind][0], params=params or {}, created_by=user, region=region
    )
    from .tasks import run_job_task

    run_job_task(job.pk)
    job.refresh_from_db()  # in immediate mode (tests, CAIWEI_HUEY_IMMEDIATE) the job has already run
    return job


def run_job(job_id: int) -> Job:
    job = Job.objects.select_related("created_by").get(pk=job_id)
    if job.finished:
        return job
    _, fn = _KINDS[job.kind]
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    ctx = JobContext(job)
    try:
        with acting_as(job.created_by, "job"):
            result = fn(ctx)
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        ctx.log(f"失败：{exc}")
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error=traceback.format_exc()[-4000:], finished_at=timezone.now()
        )
    else:
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED, result=result, finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job


def tick() -> None:
    WorkerBeat.objects.update_or_create(name="tick", defaults={"at": timezone.now()})
    for hook in _TICK_HOOKS:
        try:
            hook()
        except Exception:
            log.exception("tick hook %s failed", getattr(hook, "__name__", hook))


def worker_alive() -> bool:
    beat = WorkerBeat.objects.filter(name="tick").first()
    return beat is not None and timezone.now() - beat.at < BEAT_STALE_AFTER
