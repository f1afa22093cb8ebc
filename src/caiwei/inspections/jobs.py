"""The worker's side of inspections: each tick creates the runs whose slot has come (one per slot, however often or
late the tick runs) and queues their automated items (``inspections.run``)."""

from caiwei.jobs.runner import JobContext, job_kind, on_tick


@job_kind("inspections.run", "自动巡检")
def run_job(ctx: JobContext) -> dict:
    from .models import Run
    from .services import execute

    run = execute(Run.objects.select_related("plan", "plan__region").get(pk=ctx.params["run"]))
    items = list(run.items.all())
    ctx.log(
        f"巡检“{run}”：{sum(i.result == 'ok' for i in items)} 项正常，{sum(i.result == 'abnormal' for i in items)} 项异常"
    )
    return {"run": run.pk, "status": run.status}


@on_tick
def create_due_runs() -> None:
    from .services import tick

    tick()
