"""Running a reconciliation for the platform: load the sources, match in DuckDB, and keep the breaks — a difference a
later run finds again is the same break (same fingerprint), carried with its owner, comments and ticket until someone
resolves it with a reason; one a later run no longer finds is marked 已消除 by that run."""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.bizcalendar.engine import is_business_day
from caiwei.bizcalendar.services import get_calendar

from . import formats, statements
from .engine import DUCKDB_MEMORY, Tolerance, create_inputs, load_business_days, reconcile
from .models import ReconBreak, ReconRun, ReconSignoff
from .sources import load_bank_files, load_book, load_pboc_monthly


def business_days(start: date, end: date, calendar: str = "workday") -> list[date]:
    """The business days from a little before ``start`` to a little after ``end`` on the stored calendar."""
    spec = get_calendar(calendar).spec()
    days, day = [], start - timedelta(days=40)
    while day <= end + timedelta(days=40):
        if is_business_day(spec, day):
            days.append(day)
        day += timedelta(days=1)
    return days


def fingerprint(kind: str, vouchers: list[str], lines: list[dict], note: str) -> str:
    """What makes two runs' breaks the same difference: the class, the vouchers, and for bank-side lines their
    bank serial number or file position."""
    identity = {
        "kind": kind,
        "vouchers": sorted(vouchers),
        "lines": sorted(f"{x.get('serial') or ''}|{x.get('file')}|{x.get('line')}" for x in lines)
        if kind == "bank_only"
        else [],
        "note": note if kind.startswith("clearing") else "",
    }
    return hashlib.sha256(json.dumps(identity, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _line_details(con: duckdb.DuckDBPyConnection, ids: list[int]) -> list[dict]:
    if not ids:
        return []
    rows = con.execute(
        "SELECT line_id, source, line, agent_business_no, pay_cert_no, amount, status, return_reason "
        "FROM bank WHERE line_id IN (SELECT unnest(?::BIGINT[])) ORDER BY line_id",
        [ids],
    ).fetchall()
    return [
        {
            "file": source,
            "line": line,
            "serial": serial or "",
            "voucher": cert or "",
            "amount": f"{amount:.2f}",
            "status": status or "",
            "reason": reason or "",
        }
        for _id, source, line, serial, cert, amount, status, reason in rows
    ]


def run_reconciliation(
    run: ReconRun,
    *,
    book_url: str,
    bank_files: list[tuple[Path, formats.Definition, str]],
    pboc_file: Path | None = None,
    calendar: str = "workday",
) -> ReconRun:
    """Execute ``run`` (already saved, with region, period, as_of and tolerance) and keep its breaks; keep on the
    run its totals per bank and day for the statements (recon/statements.py)."""
    tolerance = Tolerance.from_dict(run.tolerance)
    try:
        ensure_can_run(run.region_id, run.period_start, run.period_end)
    except PeriodSigned as exc:
        run.status, run.message, run.finished_at = ReconRun.Status.FAILED, exc.messages[0], timezone.now()
        run.save(update_fields=["status", "message", "finished_at"])
        raise
    run.status, run.started_at = ReconRun.Status.RUNNING, timezone.now()
    run.save(update_fields=["status", "started_at"])
    try:
        with tempfile.TemporaryDirectory(prefix="caiwei-recon-") as tmp:
            work = Path(tmp)
            con = duckdb.connect()
            con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
            con.execute("SET temp_directory = ?", [str(work / "spill")])
            create_inputs(con)
            load_business_days(con, business_days(run.period_start, run.as_of, calendar))
            loaded = load_bank_files(con, bank_files, work)
            book = load_book(con, book_url, run.period_end.year, work)
            clearing = load_pboc_monthly(con, pboc_file) if pboc_file else 0
            result = reconcile(con, tolerance, run.as_of, clearing_period="month")
            found = [{**b, "line_details": _line_details(con, b["lines"])} for b in result.breaks]
            for b in found:
                b["fingerprint"] = fingerprint(b["kind"], b["vouchers"], b["line_details"], b["note"])
            totals = statements.compute_totals(con, found, run.period_start, run.period_end)
            con.close()
    except Exception as exc:
        run.status, run.message, run.finished_at = (
            ReconRun.Status.FAILED,
            f"{type(exc).__name__}：{exc}"[:2000],
            timezone.now(),
        )
        run.save(update_fields=["status", "message", "finished_at"])
        raise
    run.sources = {
        "files": loaded.files,
        "lines": loaded.lines,
        "amount": f"{loaded.amount:.2f}",
        "refused": loaded.refused,
        "vouchers": book,
        "clearing_lines": clearing,
    }
    run.totals = totals
    for name in ("matched_by_key", "matched_by_attributes", "split_vouchers", "in_transit", "cleared_lines"):
        setattr(run, name, getattr(result, name))
    keep_breaks(run, found)
    return run


@transaction.atomic
def keep_breaks(run: ReconRun, found: list[dict]) -> None:
    """Carry or open each found break; mark the open breaks of earlier runs of the same scope that this run no
    longer finds as 已消除; finish the run; record it in the audit chain. A run whose period has a signed month is
    refused; breaks belonging to a signed month of a bank (found by a run of another period) are left as signed."""
    ensure_can_run(run.region_id, run.period_start, run.period_end)
    signed = signed_periods(run.region_id)

    def frozen(bank_code: str, day) -> bool:
        return bool(bank_code and day and (bank_code, day.replace(day=1)) in signed)

    scope = ReconBreak.objects.filter(region=run.region, database=run.database)
    open_by_print = {b.fingerprint: b for b in scope.filter(state=ReconBreak.State.OPEN).select_for_update()}
    seen, new, untouched = set(), 0, 0
    for b in found:
        lines = b["line_details"]
        key = fingerprint(b["kind"], b["vouchers"], lines, b["note"])
        if key in seen:
            continue
        seen.add(key)
        existing = open_by_print.get(key)
        bank_code, day = b.get("bank_code", ""), b.get("day")
        if (existing and frozen(existing.bank_code, existing.day)) or frozen(bank_code, day):
            untouched += 1
            continue
        if existing:
            existing.last_run = run
            existing.lines = lines
            existing.book_amount, existing.bank_amount = b["book_amount"], b["bank_amount"]
            existing.bank_code, existing.day = bank_code or existing.bank_code, day or existing.day
            existing._period_checked = True
            existing.save(
                update_fields=["last_run", "lines", "book_amount", "bank_amount", "bank_code", "day"]
            )
            continue
        created = ReconBreak(
            region=run.region,
            database=run.database,
            fingerprint=key,
            kind=b["kind"],
            vouchers=b["vouchers"],
            lines=lines,
            book_amount=b["book_amount"],
            bank_amount=b["bank_amount"],
            note=b["note"][:200],
            first_run=run,
            last_run=run,
            bank_code=bank_code,
            day=day,
        )
        created._period_checked = True
        created.save()
        new += 1
    gone = [b for k, b in open_by_print.items() if k not in seen and not frozen(b.bank_code, b.day)]
    for b in gone:
        b.state, b.resolution = ReconBreak.State.CLEARED, f"第 {run.pk} 次对账已无此差异"
        b.resolved_at = timezone.now()
        b._period_checked = True
        b.save(update_fields=["state", "resolution", "resolved_at"])
    run.breaks_new = new
    run.breaks_open = len(seen)
    if untouched:
        run.message = f"已签认期间的差异 {untouched} 条保持签认时的状态（已签认期间只读）"
    run.status, run.finished_at = ReconRun.Status.DONE, timezone.now()
    run.save()
    voided = void_partial_signoffs(run)
    record(
        AuditAction.CREATE,
        obj=run,
        detail={
            "breaks_new": new,
            "breaks_open": run.breaks_open,
            "cleared": len(gone),
            "sources": run.sources,
            **({"signed_untouched": untouched} if untouched else {}),
            **({"signoffs_voided": voided} if voided else {}),
        },
    )


# === Statements and the monthly sign-off ===========================================================================
# A month of a bank in a region, signed by the bank's user and a finance user, is read-only: every writer of breaks,
# comments, runs and sign-offs asks the functions below (the models call them on save, so no path is missed).


class PeriodSigned(ValidationError):
    """Refusal to write into a signed period (a ValidationError: pages show it, the API answers 400)."""


def month_start(day: date) -> date:
    return day.replace(day=1)


def signed_periods(region_id: int) -> set[tuple[str, date]]:
    """(bank code, first of month) of every fully signed month of the region."""
    return set(
        ReconSignoff.objects.filter(region_id=region_id, state=ReconSignoff.State.SIGNED).values_list(
            "bank_code", "month"
        )
    )


def _signed_text(signoff: ReconSignoff) -> str:
    when = timezone.localtime(signoff.finance_signed_at or signoff.bank_signed_at or signoff.created_at)
    return (
        f"{statements.cn_month(signoff.month)}{statements.bank_label(signoff.bank_code)}的对账"
        f"已于 {when:%Y-%m-%d %H:%M} 签认"
    )


def ensure_period_open(region_id: int | None, bank_code: str, day: date | None, action: str = "修改") -> None:
    """Refuse (PeriodSigned) when the month of ``day`` is signed for ``bank_code`` in the region."""
    if not region_id or not bank_code or day is None:
        return
    signoff = ReconSignoff.objects.filter(
        region_id=region_id, bank_code=bank_code, month=month_start(day), state=ReconSignoff.State.SIGNED
    ).first()
    if signoff is not None:
        raise PeriodSigned(f"{_signed_text(signoff)}，该期间只读：不能{action}")


def ensure_break_writable(brk: ReconBreak, action: str = "修改差异") -> None:
    """Every write to a break (resolve, assign, comment, ticket, carry by a run) asks this first."""
    ensure_period_open(brk.region_id, brk.bank_code, brk.day, action)
    if brk.pk:
        # what is stored decides too: a writer cannot move a break out of a signed month
        stored = ReconBreak.objects.filter(pk=brk.pk).values_list("region_id", "bank_code", "day").first()
        if stored and stored != (brk.region_id, brk.bank_code, brk.day):
            ensure_period_open(*stored, action)


def signed_months_between(region_id: int, start: date, end: date):
    return ReconSignoff.objects.filter(
        region_id=region_id, state=ReconSignoff.State.SIGNED, month__gte=month_start(start), month__lte=end
    ).order_by("month", "bank_code")


def ensure_can_run(region_id: int, start: date, end: date) -> None:
    """Refuse a (re-)run whose period touches a signed month of the region, for any bank: the run would change
    that bank's breaks and statements of a signed period."""
    signed = list(signed_months_between(region_id, start, end)[:5])
    if signed:
        names = "；".join(_signed_text(s) for s in signed)
        raise PeriodSigned(f"{names}，该期间只读：不能重新对账（请选择未签认的期间）")


def ensure_run_writable(run: ReconRun) -> None:
    """A run a sign-off has signed keeps what it had (its totals are the signed statement)."""
    signoff = run.signoffs.filter(state=ReconSignoff.State.SIGNED).first() if run.pk else None
    if signoff is not None:
        raise PeriodSigned(f"{_signed_text(signoff)}，所依据的第 {run.pk} 次对账不能修改")


def void_partial_signoffs(run: ReconRun) -> int:
    """A new run of a month voids the signatures given on an earlier run of it (they signed other figures): the
    sign-off starts again on this run. Recorded in the audit chain."""
    voided = 0
    for signoff in (
        ReconSignoff.objects.select_for_update()
        .filter(
            region_id=run.region_id,
            month__gte=month_start(run.period_start),
            month__lte=run.period_end,
            state__in=[ReconSignoff.State.BANK, ReconSignoff.State.FINANCE],
        )
        .exclude(run=run)
    ):
        before = {
            "run": signoff.run_id,
            "state": signoff.state,
            "bank_user": signoff.bank_user_id,
            "finance_user": signoff.finance_user_id,
        }
        signoff.run = run
        signoff.state = ReconSignoff.State.PENDING
        signoff.bank_user = signoff.finance_user = None
        signoff.bank_signed_at = signoff.finance_signed_at = None
        signoff.figures = {}
        signoff.save()
        record(
            AuditAction.UPDATE,
            obj=signoff,
            before=before,
            detail={"event": "签认作废", "reason": f"第 {run.pk} 次对账重新对账了该月"},
        )
        voided += 1
    return voided


def statement_runs(user):
    """The finished runs whose statements ``user`` may read: by region (a bank user reads only the statements of
    the bank of their account)."""
    return ReconRun.objects.visible_to(user).filter(status=ReconRun.Status.DONE).select_related("region")


def statement_banks(user, run: ReconRun) -> list[str]:
    """The banks of ``run`` whose statements ``user`` may read."""
    from caiwei.accounts.roles import FINANCE_ROLES, OPS_ROLES, Role

    banks = statements.banks_of(run)
    if user.has_role(*OPS_ROLES, *FINANCE_ROLES):
        return banks
    if user.has_role(Role.BANK_USER):
        return [b for b in banks if b == user.bank_code]
    return []


def visible_signoffs(user):
    from caiwei.accounts.roles import FINANCE_ROLES, OPS_ROLES, Role

    qs = ReconSignoff.objects.visible_to(user).select_related("region", "run", "bank_user", "finance_user")
    if user.is_authenticated and not user.has_role(*OPS_ROLES, *FINANCE_ROLES):
        qs = (
            qs.filter(bank_code=user.bank_code)
            if user.has_role(Role.BANK_USER) and user.bank_code
            else qs.none()
        )
    return qs


def latest_run_of_month(region_id: int, month: date) -> ReconRun | None:
    """The newest finished run of the region whose period touches ``month``."""
    return (
        ReconRun.objects.filter(
            region_id=region_id,
            status=ReconRun.Status.DONE,
            period_start__lte=statements.month_end(month),
            period_end__gte=month,
        )
        .order_by("-finished_at", "-pk")
        .first()
    )


def signoff_of(run: ReconRun, bank_code: str, month: date) -> ReconSignoff | None:
    return ReconSignoff.objects.filter(region_id=run.region_id, bank_code=bank_code, month=month).first()


def sign_sides(user) -> list[str]:
    """The sides ``user`` may sign for: bank (a 银行用户 with an agent bank), finance (财政业务人员 or 审批人)."""
    from caiwei.accounts.roles import FINANCE_ROLES, Role

    sides = []
    if user.has_role(Role.BANK_USER):
        sides.append("bank")
    if user.has_role(*FINANCE_ROLES):
        sides.append("finance")
    return sides


def sign_problem(user, run: ReconRun, bank_code: str, month: date, side: str) -> str:
    """Why ``user`` may not sign ``side`` of ``bank_code``'s ``month`` on ``run`` now (empty: they may)."""
    from caiwei.regions.scoping import visible_regions

    if side == "bank":
        if not user.bank_code:
            return "您的账号未设置所属代理银行，不能代表银行签认"
        if user.bank_code != bank_code:
            return (
                f"您的账号属于{statements.bank_label(user.bank_code)}，"
                f"不能签认{statements.bank_label(bank_code)}的对账"
            )
    elif side == "finance":
        if not visible_regions(user).filter(pk=run.region_id).exists():
            return f"您没有{run.region.name}的区划授权，不能代表财政签认该区划的对账"
    else:
        return "签认身份应为银行（bank）或财政（finance）"
    return ""


def sign(user, run: ReconRun, bank_code: str, month: date, side: str | None = None) -> ReconSignoff:
    """``user`` signs the month's statements of ``bank_code`` on ``run``, for the bank or for finance (either
    first); both signed, the month is read-only. Each signature goes to the audit chain with the figures signed."""
    from django.core.exceptions import PermissionDenied

    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability
    from caiwei.audit.log import record_denied

    ensure(user, Capability.RECON_SIGN, "recon.signoff")
    sides = sign_sides(user)
    if side is None:
        if len(sides) != 1:
            raise ValidationError("请指明以银行（bank）还是财政（finance）身份签认")
        side = sides[0]
    if side not in ("bank", "finance"):
        raise ValidationError("签认身份应为银行（bank）或财政（finance）")
    if side not in sides:
        record_denied("recon.signoff", Capability.RECON_SIGN)
        raise PermissionDenied(
            "只有银行用户可以代表银行签认"
            if side == "bank"
            else "只有财政业务人员或财政审批人可以代表财政签认"
        )
    problem = sign_problem(user, run, bank_code, month, side)
    if problem:
        record_denied("recon.signoff", Capability.RECON_SIGN)
        raise PermissionDenied(problem)
    month = month_start(month)
    if run.status != ReconRun.Status.DONE:
        raise ValidationError(f"第 {run.pk} 次对账尚未完成，不能签认")
    if run.period_start > month or run.period_end < statements.month_end(month):
        raise ValidationError(
            f"第 {run.pk} 次对账的期间（{statements.cn_date(run.period_start)}至"
            f"{statements.cn_date(run.period_end)}）不含整个{statements.cn_month(month)}，不能签认该月"
        )
    if bank_code not in statements.banks_of(run):
        raise ValidationError(f"第 {run.pk} 次对账中没有银行“{bank_code}”的数据")
    latest = latest_run_of_month(run.region_id, month)
    if latest is not None and latest.pk != run.pk:
        raise ValidationError(
            f"{statements.cn_month(month)}已有更新的第 {latest.pk} 次对账，请按最新的对账签认"
        )
    statement = statements.build(
        run, bank_code, statements.Period("month", month, statements.month_end(month))
    )
    with transaction.atomic():
        return _sign(user, run, bank_code, month, side, statement.figures())


def _sign(user, run: ReconRun, bank_code: str, month: date, side: str, figures: dict) -> ReconSignoff:
    ReconSignoff.objects.get_or_create(
        region_id=run.region_id, bank_code=bank_code, month=month, defaults={"run": run}
    )
    signoff = ReconSignoff.objects.select_for_update().get(
        region_id=run.region_id, bank_code=bank_code, month=month
    )
    if signoff.state == ReconSignoff.State.SIGNED:
        raise PeriodSigned(f"{_signed_text(signoff)}，不能再次签认")
    if signoff.run_id != run.pk:
        if signoff.bank_user_id or signoff.finance_user_id:
            raise ValidationError(f"该月的签认依据第 {signoff.run_id} 次对账，请在该次对账上签认")
        signoff.run = run  # nobody has signed yet: the sign-off follows the newest run
    now = timezone.now()
    if side == "bank":
        if signoff.bank_user_id:
            raise ValidationError(f"银行方已由{signoff.bank_user}签认")
        if signoff.finance_user_id == user.pk:
            raise ValidationError("同一人不能同时代表银行和财政签认")
        signoff.bank_user, signoff.bank_signed_at = user, now
    else:
        if signoff.finance_user_id:
            raise ValidationError(f"财政方已由{signoff.finance_user}签认")
        if signoff.bank_user_id == user.pk:
            raise ValidationError("同一人不能同时代表银行和财政签认")
        signoff.finance_user, signoff.finance_signed_at = user, now
    if signoff.figures and signoff.figures != figures:
        raise ValidationError("对账数字与另一方签认时不同，请刷新后重新核对")
    signoff.figures = figures
    both = signoff.bank_user_id and signoff.finance_user_id
    signoff.state = (
        ReconSignoff.State.SIGNED
        if both
        else ReconSignoff.State.BANK
        if signoff.bank_user_id
        else ReconSignoff.State.FINANCE
    )
    signoff.save()
    record(
        AuditAction.UPDATE,
        obj=signoff,
        detail={
            "event": "对账签认",
            "side": "银行" if side == "bank" else "财政",
            "region": run.region.code,
            "bank_code": bank_code,
            "month": month.isoformat()[:7],
            "run": run.pk,
            "state": signoff.state,
            "figures": figures,
        },
    )
    return signoff


def overview(user, run: ReconRun) -> list[dict]:
    """Per bank ``user`` may read and month of ``run``: the 调节表's figures, the sign-off, and what ``user`` may
    sign there now (the sides, with the reason where they may not)."""
    banks = statement_banks(user, run)
    months = statements.months_of(run)
    signoffs = {
        (s.bank_code, s.month): s
        for s in ReconSignoff.objects.filter(
            region_id=run.region_id, bank_code__in=banks, month__in=months
        ).select_related("bank_user", "finance_user")
    }
    latest = {m: latest_run_of_month(run.region_id, m) for m in months}
    rows = []
    for bank in banks:
        for month in months:
            s = statements.build(
                run, bank, statements.Period("month", month, statements.month_end(month)), lookup=False
            )
            signoff = signoffs.get((bank, month))
            whole = run.period_start <= month and run.period_end >= statements.month_end(month)
            newest = latest[month] is None or latest[month].pk == run.pk
            can = {}
            if user.can("recon.sign"):
                for side in sign_sides(user):
                    problem = sign_problem(user, run, bank, month, side)
                    if not problem and not whole:
                        problem = "对账期间不含整月，不能签认该月"
                    if not problem and not newest:
                        problem = f"已有更新的第 {latest[month].pk} 次对账"
                    if not problem and signoff is not None:
                        if signoff.state == ReconSignoff.State.SIGNED:
                            problem = "已签认"
                        elif signoff.run_id != run.pk and (signoff.bank_user_id or signoff.finance_user_id):
                            problem = f"该月的签认依据第 {signoff.run_id} 次对账"
                        elif getattr(signoff, f"{side}_user_id"):
                            problem = "已签"
                        elif (
                            getattr(signoff, f"{'finance' if side == 'bank' else 'bank'}_user_id") == user.pk
                        ):
                            problem = "同一人不能同时代表银行和财政签认"
                    can[side] = problem
            rows.append({"bank": bank, "month": month, "statement": s, "signoff": signoff, "can": can})
    return rows
