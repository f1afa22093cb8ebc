"""The background job of a reconciliation (huey, through caiwei.jobs like the data checks' runs)."""

from caiwei.jobs.runner import JobContext, job_kind

from .models import ReconRun


@job_kind("recon.run", "对账")
def run_job(ctx: JobContext) -> dict:
    from .services import execute

    ctx.log(f"开始对账 #{ctx.params['run']}")
    run = execute(ctx.params, log=ctx.log)
    if run.status == ReconRun.Status.FAILED:
        raise RuntimeError(run.message)
    refused = len((run.sources or {}).get("refused", []))
    summary = (
        f"银行明细 {run.sources.get('lines', 0)} 笔（{run.sources.get('files', 0)} 个文件，拒收 {refused} 个），"
        f"凭证 {run.sources.get('vouchers', 0)} 张；按业务号相符 {run.matched_by_key}，按金额账户日期相符 "
        f"{run.matched_by_attributes}，在途 {run.in_transit}；差异 {run.breaks_open} 条（新 {run.breaks_new} 条）"
    )
    ctx.log(summary)
    return {"run": run.pk, "summary": summary}
