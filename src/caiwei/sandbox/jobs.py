from caiwei.jobs.runner import JobContext, job_kind

from .generator import GenerateSpec, parse_faults
from .service import bank_files_dir, default_url, manifest_path, run_generate


@job_kind("sandbox.generate", "生成演练库")
def generate_job(ctx: JobContext) -> dict:
    p = ctx.params
    spec = GenerateSpec(
        year=int(p.get("year", 2026)),
        regions=p.get("regions", "152500000:3"),
        payments=int(p.get("payments", 20000)),
        seed=int(p.get("seed", 1)),
        faults=parse_faults(p.get("faults", "")),
    )
    ctx.log(f"开始生成：{spec.regions}，{spec.payments} 笔支付，种子 {spec.seed}")
    manifest = run_generate(
        default_url(), spec, manifest=manifest_path(), bank_dir=bank_files_dir(), progress=ctx.progress
    )
    summary = f"已生成 {manifest.counts.get('pay_voucher', 0)} 笔支付，注入故障 {len(manifest.faults)} 处"
    ctx.log(summary)
    return {"summary": summary, "counts": manifest.counts, "faults": len(manifest.faults)}
