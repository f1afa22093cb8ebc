from caiwei.jobs.runner import JobContext, job_kind, on_tick

from .models import CheckRun


@job_kind("checks.run", "数据检查")
def run_job(ctx: JobContext) -> dict:
    from .services import execute

    run = CheckRun.objects.select_related("database", "database__target").get(pk=ctx.params["run"])
    ctx.log(f"开始检查：{run.database}，规则包 {run.packs}，检查日 {run.as_of}")
    run = execute(run, progress=ctx.progress)
    if run.status == CheckRun.Status.FAILED:
        raise RuntimeError(run.message)
    summary = f"{run.rules_total} 条规则，{run.rules_failing} 条发现问题共 {run.findings} 条，{run.rules_error} 条出错"
    ctx.log(summary)
    return {"run": run.pk, "summary": summary}


@on_tick
def fire_due_schedules() -> None:
    from .services import fire_schedules

    fire_schedules()
