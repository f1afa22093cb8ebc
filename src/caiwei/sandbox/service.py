"""Running the sandbox from Django: where the default sandbox lives, and its state for the page and the API."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import sqlalchemy as sa
from django.conf import settings

from .generator import GenerateSpec, Manifest, connect, generate, parse_faults
from .schema import metadata

SUMMARY_TABLES = [
    ("ele_agency", "预算单位"),
    ("pm_project_info", "项目"),
    ("ba_bgt_info", "指标"),
    ("pay_plan_voucher", "用款计划"),
    ("pay_voucher", "支付申请"),
    ("pay_voucher_bill", "支付凭证"),
    ("pay_bank_receipt", "银行回单"),
    ("pay_clearing", "清算"),
    ("gl_voucher", "总账凭证"),
    ("ba_bgt_carryovers", "结转"),
    ("person_info", "人员"),
    ("asset_card", "资产卡片"),
    ("sys_user", "系统用户"),
    ("pay_salary_run", "工资统发批次"),
    ("asset_depr", "折旧明细"),
    ("gl_voucher_line", "总账分录"),
    ("pay_back_info", "退款"),
]


def default_url() -> str:
    return getattr(settings, "CAIWEI_SANDBOX_URL", "") or f"sqlite:///{settings.VAR_DIR / 'sandbox.sqlite3'}"


def manifest_path() -> Path:
    return settings.VAR_DIR / "sandbox-manifest.json"


def bank_files_dir() -> Path:
    return settings.VAR_DIR / "sandbox-bank-files"


def mq_journal_path() -> Path:
    """The message journal the sandbox's flow (``caiwei sandbox flow``) writes: what ``recon run --mq`` reads."""
    return settings.VAR_DIR / "sandbox-mq-journal.jsonl"


def run_generate(
    url: str, spec: GenerateSpec, *, manifest: Path | None = None, bank_dir: Path | None = None, progress=None
) -> Manifest:
    result = generate(url, spec, progress=progress)
    if bank_dir is not None:
        from .bankexport import export_bank_files

        result.counts["bank_files"] = len(export_bank_files(url, bank_dir, result))
    if manifest is not None:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1, default=str))
    return result


def load_default(payments: int = 20000, seed: int = 1, faults: str = "all=1") -> Manifest:
    """The quickstart's sandbox: a league and three counties with every fault type once."""
    spec = GenerateSpec(payments=payments, seed=seed, faults=parse_faults(faults))
    return run_generate(default_url(), spec, manifest=manifest_path(), bank_dir=bank_files_dir())


def summary(url: str | None = None) -> dict:
    """Row counts and the manifest of the loaded sandbox, or {"loaded": False}."""
    url = url or default_url()
    engine = connect(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
        if "pay_voucher" not in names:
            return {"loaded": False, "url": url}
        with engine.connect() as conn:
            counts = [
                {
                    "table": t,
                    "label": label,
                    "rows": conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[t])).scalar(),
                }
                for t, label in SUMMARY_TABLES
            ]
            regions = conn.execute(
                sa.text("SELECT mof_div_code, mof_div_name FROM ele_mof_div ORDER BY mof_div_code")
            ).all()
            banks = conn.execute(
                sa.text("SELECT bank_code, bank_name, file_format FROM ele_bank ORDER BY bank_code")
            ).all()
    finally:
        engine.dispose()
    manifest = json.loads(manifest_path().read_text()) if manifest_path().exists() else None
    return {
        "loaded": True,
        "url": url.split("@")[-1],
        "counts": counts,
        "regions": [{"code": r[0], "name": r[1]} for r in regions],
        "banks": [{"code": b[0], "name": b[1], "format": b[2]} for b in banks],
        "manifest": manifest,
    }


def root_region_code() -> str:
    """The region the loaded sandbox belongs to: the first code of its spec (``152500000:3`` is the league and
    three of its counties), from the manifest, or the quickstart's league when none was written."""
    spec = GenerateSpec().regions
    if manifest_path().exists():
        with contextlib.suppress(ValueError, AttributeError):
            spec = json.loads(manifest_path().read_text()).get("spec", {}).get("regions") or spec
    return str(spec).split(":", 1)[0].split(",", 1)[0]


def can_see(user) -> bool:
    """The sandbox holds a whole league's data and bank files: only those granted that league (or above) see it."""
    from caiwei.regions.scoping import visible_regions

    return visible_regions(user).filter(code=root_region_code()).exists()
