"""Jobs of data change execution and rollback, and crash recovery when the worker starts."""

import logging

from caiwei.jobs.runner import JobContext, job_kind

log = logging.getLogger(__name__)


@job_kind("dataops.change_execute", "执行数据变更")
def execute_job(ctx: JobContext) -> dict:
    from . import changes_services as services
    from .models_changes import ChangeRequest

    change = ChangeRequest.objects.select_related("database", "database__target").get(pk=ctx.params["change"])
    ctx.log(f"执行：{change.number} {change.title}")
    attempt = services.execute(ctx.job.created_by, change)
    ctx.log(f"结果：{attempt.get_state_display()}{'，' + attempt.message if attempt.message else ''}")
    if attempt.state != attempt.State.APPLIED:
        raise RuntimeError(attempt.message or attempt.get_state_display())
    return {"change": change.pk, "attempt": attempt.pk, "rows": attempt.rows}


@job_kind("dataops.change_recover", "数据变更崩溃恢复")
def recover_job(ctx: JobContext) -> dict:
    from . import changes_services as services

    found = services.recover()
    for item in found:
        ctx.log(f"变更 #{item['change']} 第 {item['attempt']} 次：{item['decision']}")
    return {"recovered": found}


def recover_at_start() -> None:
    """The worker's start: decide the attempts a crash left running before taking new work."""
    from . import changes_services as services

    try:
        for item in services.recover():
            log.warning("数据变更恢复：%s", item)
    except Exception:
        log.exception("数据变更恢复失败")


try:  # huey's consumer calls this once per worker when it starts
    from huey.contrib.djhuey import on_startup

    on_startup()(recover_at_start)
except Exception:  # pragma: no cover - no huey configured
    log.debug("huey on_startup unavailable")
