"""API of the statements 对账单与余额调节表 (/api/recon/statements) and the monthly sign-off (/api/recon/signoffs)."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router, Schema
from pydantic import Field, field_validator

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record_export

from . import services, statements
from .cli_statements import signoff_dict

statements_router = Router(tags=["对账单与签认"])
signoffs_router = Router(tags=["对账单与签认"])

ID = Path(..., gt=0, le=2**63 - 1)
BANK = re.compile(r"^[A-Za-z0-9_\-]{1,12}$")
MONTH = re.compile(r"^\d{4}-\d{2}$")


def _bank(value: str) -> str:
    if not BANK.match(value):
        raise ValueError("银行编码应为 1–12 位字母、数字、下划线或连字符")
    return value


def _month(value: str) -> str:
    if not MONTH.match(value):
        raise ValueError("月份格式应为 YYYY-MM")
    try:
        date.fromisoformat(f"{value}-01")
    except ValueError:
        raise ValueError("月份格式应为 YYYY-MM") from None
    return value


class StatementQuery(Schema):
    bank: str = Field(..., description="银行编码")
    period: Literal["day", "month"] = Field("month", description="day 按日，month 按月")
    date: str = Field("", description="YYYY-MM-DD（按日）或 YYYY-MM（按月），缺省为对账期间的最后一日/月")

    _bank = field_validator("bank")(_bank)


class FileQuery(StatementQuery):
    format: Literal["xlsx", "docx"] = "xlsx"


class SignIn(Schema):
    run: int = Field(..., gt=0, le=2**63 - 1, description="对账编号")
    bank_code: str = Field(..., description="银行编码")
    month: str = Field(..., description="月份 YYYY-MM")
    side: Literal["bank", "finance"] | None = Field(
        None, description="签认身份；账号兼有银行与财政角色时必填"
    )

    _bank = field_validator("bank_code")(_bank)
    _month = field_validator("month")(_month)


class SignoffFilter(Schema):
    region: str = ""
    bank: str = ""
    month: str = ""
    state: Literal["", "pending", "bank", "finance", "signed"] = ""


def _run(request, run_id: int):
    return get_object_or_404(services.statement_runs(request.user), pk=run_id)


def _statement(request, run_id: int, q: StatementQuery):
    run = _run(request, run_id)
    if q.bank not in services.statement_banks(request.user, run):
        raise Http404
    try:
        return run, statements.statement_for(run, q.bank, q.period, q.date or None)
    except statements.StatementError as exc:
        raise ValidationError(str(exc)) from exc


@statements_router.get("/{run_id}", summary="某次对账各银行各月的调节结果与签认状态")
def run_overview(request, run_id: int = ID):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.statements")
    run = _run(request, run_id)
    rows = services.overview(request.user, run)
    return {
        "run": run.pk,
        "region": {"code": run.region.code, "name": run.region.name},
        "period": {"start": run.period_start.isoformat(), "end": run.period_end.isoformat()},
        "as_of": run.as_of.isoformat(),
        "banks": [
            {"code": b, "name": statements.bank_name(b)} for b in dict.fromkeys(r["bank"] for r in rows)
        ],
        "months": [
            {
                "bank": r["bank"],
                "month": r["month"].isoformat()[:7],
                "bank_paid": f"{r['statement'].bank_paid:.2f}",
                "book_paid": f"{r['statement'].book_paid:.2f}",
                "adjusted_bank": f"{r['statement'].adjusted_bank:.2f}",
                "adjusted_book": f"{r['statement'].adjusted_book:.2f}",
                "balanced": r["statement"].balanced,
                "partial": bool(r["statement"].cut),
                "signoff": signoff_dict(r["signoff"]) if r["signoff"] else None,
                "may_sign": {side: problem or "可以签认" for side, problem in r["can"].items()},
            }
            for r in rows
        ],
    }


@statements_router.get("/{run_id}/statement", summary="对账单与余额调节表（JSON）")
def statement(request, run_id: int = ID, q: Query[StatementQuery] = None):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.statement")
    _, s = _statement(request, run_id, q)
    return s.as_dict()


@statements_router.get("/{run_id}/file", summary="对账单与余额调节表文件（Excel 或 Word）")
def statement_file(request, run_id: int = ID, q: Query[FileQuery] = None):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.statement.file")
    run, s = _statement(request, run_id, q)
    signoff = (
        services.signoff_of(run, q.bank, s.period.start.replace(day=1)) if s.period.kind == "month" else None
    )
    name, content_type, data = statements.render(s, q.format, signoff)
    record_export(
        "recon.statement",
        len(s.days),
        {"run": run.pk, "bank": q.bank, "period": s.period.key, "format": q.format},
    )
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response


@signoffs_router.get("", summary="月度签认记录")
def signoffs(request, q: Query[SignoffFilter] = None):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.signoffs")
    qs = services.visible_signoffs(request.user).order_by("-month", "region__code", "bank_code")
    if q.region:
        qs = qs.filter(region__code=q.region)
    if q.bank:
        qs = qs.filter(bank_code=q.bank)
    if q.month:
        try:
            qs = qs.filter(month=date.fromisoformat(f"{_month(q.month)}-01"))
        except ValueError as exc:
            raise ValidationError({"month": [str(exc)]}) from exc
    if q.state:
        qs = qs.filter(state=q.state)
    return [signoff_dict(s) for s in qs[:500]]


@signoffs_router.post("", summary="签认某次对账中某家银行某月的对账（银行用户与财政用户各签一次）")
def sign(request, data: SignIn):
    ensure(request.user, Capability.RECON_SIGN, "api:recon.sign")
    run = get_object_or_404(services.statement_runs(request.user), pk=data.run)
    done = services.sign(request.user, run, data.bank_code, date.fromisoformat(f"{data.month}-01"), data.side)
    done.refresh_from_db()
    return signoff_dict(done)


@signoffs_router.get("/{signoff_id}", summary="一条月度签认")
def signoff(request, signoff_id: int = ID):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.signoff")
    return signoff_dict(get_object_or_404(services.visible_signoffs(request.user), pk=signoff_id))
