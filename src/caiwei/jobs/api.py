from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Path, Router, Schema

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability

from .models import Job
from .views import visible_jobs

router = Router(tags=["后台任务"])


class JobOut(Schema):
    id: int
    kind: str
    title: str
    status: str
    done: int
    total: int | None
    percent: int | None
    log: str
    result: Any
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_out(job: Job) -> dict:
    data = {f: getattr(job, f) for f in JobOut.model_fields if f not in {"created_by", "percent"}}
    return data | {"percent": job.percent, "created_by": job.created_by.username if job.created_by else None}


@router.get("", response=list[JobOut], summary="我可见的后台任务（最近 100 个）")
def list_jobs(request):
    ensure(request.user, Capability.VIEW_JOBS, "api:jobs")
    return [job_out(j) for j in visible_jobs(request.user)[:100]]


@router.get("/{job_id}", response=JobOut, summary="任务进度与日志")
def get_job(request, job_id: int = Path(..., gt=0, le=2**63 - 1)):
    ensure(request.user, Capability.VIEW_JOBS, "api:jobs")
    return job_out(get_object_or_404(visible_jobs(request.user), pk=job_id))
