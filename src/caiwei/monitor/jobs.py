"""The worker's side of monitoring: each tick probes the items whose time has come; once an hour the raw results
older than the raw period are folded into hourly rows (``monitor.rollup``)."""

from django.utils import timezone

from caiwei.jobs.runner import JobContext, job_kind, on_tick


@job_kind("monitor.rollup", "监控结果归并")
def rollup_job(ctx: JobContext) -> dict:
    from .services import roll_up

    out = roll_up()
    ctx.log(
        f"归并 {out['rollups']} 个小时段，删除原始结果 {out['raw_deleted']} 条、过期小时数据 {out['rollups_deleted']} 条"
    )
    return out


@on_tick
def probe_due_items() -> None:
    from .services import run_due

    run_due()


@on_tick
def roll_up_hourly() -> None:
    """At the first tick of each hour (minute 0–1), fold the raw results (idempotent: a second run finds none)."""
    if timezone.now().minute < 2:
        from .services import roll_up

        roll_up()
