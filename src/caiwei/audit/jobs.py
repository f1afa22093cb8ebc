from caiwei.jobs.runner import JobContext, job_kind, on_tick

from .seals import seal_if_due, seal_quietly
from .verify import check_chain


def describe(broken) -> str:
    """“第 N 行。原因” for a row; the reason alone when the seal file itself does not check (seq 0)."""
    return f"第 {broken.seq} 行。{broken.reason}" if broken.seq else broken.reason


@job_kind("audit.verify", "审计链校验")
def verify_job(ctx: JobContext) -> dict:
    report = check_chain(progress=ctx.progress)
    count, broken = report.rows, report.broken
    if broken is None:
        sealed = seal_quietly(report.last)
        summary = f"审计链完整：共 {count} 行（{report.seal_note()}）"
        ctx.log(summary)
        if sealed is not None:
            ctx.log(f"已写封存点：第 {sealed.seq} 行")
        return {"intact": True, "rows": count, "summary": summary}
    summary = f"审计链断裂：{describe(broken)}"
    ctx.log(summary)
    return {
        "intact": False,
        "rows": count,
        "broken_seq": broken.seq,
        "reason": broken.reason,
        "summary": summary,
    }


@on_tick
def seal_tick() -> None:
    """Seal the chain every few minutes (CAIWEI_AUDIT_SEAL_MINUTES, default 5) when it has grown; a chain that
    does not extend the last seal raises, and the tick logs it."""
    seal_if_due()
