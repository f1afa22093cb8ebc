"""The worker's side of bank file intake: a ``recon.pull`` job pulls one source; the tick starts one for each source
whose time has come (recon/intake.py)."""

from caiwei.jobs.runner import JobContext, job_kind, on_tick

from .models import BankFileSource


@job_kind("recon.pull", "拉取银行文件")
def pull_job(ctx: JobContext) -> dict:
    from .intake import pull

    source = BankFileSource.objects.select_related("region", "bank_format").get(pk=ctx.params["source"])
    ctx.log(f"拉取：{source}（{source.get_kind_display()}，银行 {source.bank_code}）")
    result = pull(source)
    for item in result.refused:
        ctx.log(f"拒收：{item['error']['message'] if item['error'] else item['name']}")
    ctx.log(result.text())
    if not result.ok:
        raise RuntimeError(result.message)
    out = result.as_dict()
    if result.accepted and source.reconcile_database_id:
        from .intake import reconcile_month

        run = reconcile_month(source)
        ctx.log(f"已发起对账 #{run.pk}（{run.period_start}—{run.period_end}）")
        out["reconciliation"] = run.pk
    return out


@on_tick
def pull_due_sources() -> None:
    from .intake import fire_due

    fire_due()
