from caiwei.jobs.runner import JobContext, job_kind

from .verify import verify_chain


@job_kind("audit.verify", "审计链校验")
def verify_job(ctx: JobContext) -> dict:
    count, broken = verify_chain(progress=ctx.progress)
    if broken is None:
        summary = f"审计链完整：共 {count} 行"
        ctx.log(summary)
        return {"intact": True, "rows": count, "summary": summary}
    summary = f"审计链断裂：第 {broken.seq} 行。{broken.reason}"
    ctx.log(summary)
    return {
        "intact": False,
        "rows": count,
        "broken_seq": broken.seq,
        "reason": broken.reason,
        "summary": summary,
    }
