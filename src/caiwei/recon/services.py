"""Running a reconciliation for the platform: load the sources, match in DuckDB, and keep the breaks — a difference a
later run finds again is the same break (same fingerprint), carried with its owner, comments and ticket until someone
resolves it with a reason; one a later run no longer finds is marked 已消除 by that run."""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import UTC, date, timedelta
from pathlib import Path

import duckdb
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.bizcalendar.engine import is_business_day
from caiwei.bizcalendar.services import get_calendar

from . import formats, statements
from .engine import DUCKDB_MEMORY, Tolerance, create_inputs, load_business_days, reconcile
from .models import ReconBreak, ReconRun, ReconSignoff
from .sources import load_bank_files, load_book, load_mq, load_pboc_monthly


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
    bank serial number or file position; for clearing breaks and the message link's sequence and dead-letter breaks
    the note (bank, date; bank, direction, sequence numbers)."""
    identity = {
        "kind": kind,
        "vouchers": sorted(vouchers),
        "lines": sorted(f"{x.get('serial') or ''}|{x.get('file')}|{x.get('line')}" for x in lines)
        if kind == "bank_only"
        else [],
        "note": note if kind.startswith(("clearing", "mq_seq")) or kind == "mq_dead_letter" else "",
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


def _message_details(con: duckdb.DuckDBPyConnection, ids: list[int]) -> list[dict]:
    """The journal lines of a message-link break, in the shape of bank lines (file, line) plus the link's fields."""
    if not ids:
        return []
    rows = con.execute(
        "SELECT source, line, direction, bank_code, seq, pay_cert_no, sent_at FROM mq "
        "WHERE msg_id IN (SELECT unnest(?::BIGINT[])) ORDER BY msg_id",
        [ids],
    ).fetchall()
    return [
        {
            "file": source,
            "line": line,
            "direction": direction,
            "bank": bank,
            "seq": seq,
            "voucher": cert or "",
            "time": sent_at.replace(tzinfo=UTC).isoformat(timespec="seconds"),
        }
        for source, line, direction, bank, seq, cert, sent_at in rows
    ]


def _break_bank(con: duckdb.DuckDBPyConnection, b: dict) -> str:
    """The agent bank a break is with: its bank lines' bank, else its vouchers', else (a clearing line of the
    central bank's file with no voucher) the clearing line's; for the message link, the link's bank."""
    if b["lines"]:
        row = con.execute("SELECT bank_code FROM bank WHERE line_id = ?", [b["lines"][0]]).fetchone()
    elif b.get("messages"):  # a message-link break: the bank of its link
        row = con.execute("SELECT bank_code FROM mq WHERE msg_id = ?", [b["messages"][0]]).fetchone()
    elif b["vouchers"]:
        row = con.execute("SELECT bank_code FROM book WHERE vou_no = ?", [b["vouchers"][0]]).fetchone()
    else:
        row = con.execute("SELECT bank_code FROM clearing WHERE lqd_no = ?", [b["note"]]).fetchone()
    return (row[0] or "")[:12] if row else ""


class AllRefused(ValueError):
    """Every bank file given was refused: nothing to reconcile against (the run fails, the reasons are kept)."""


def run_reconciliation(
    run: ReconRun,
    *,
    book_url: str,
    bank_files: list[tuple[Path, formats.Definition, str]],
    pboc_file: Path | None = None,
    calendar: str = "workday",
    mq_journals: list[Path] | None = None,
    only_banks: list[str] | None = None,
) -> ReconRun:
    """Execute ``run`` (already saved, with region, period, as_of and tolerance) and keep its breaks. With
    ``mq_journals``, the message link's journals are checked too (receipts waited for until now).

    ``only_banks``: the book (and clearing) cut to these agent banks — a run over one bank's files does not call
    every other bank's vouchers 仅我方有. Without ``pboc_file`` there is no clearing side, so no clearing breaks.

    Keeps on the run its totals per bank and day for the statements (recon/statements.py)."""
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
            if bank_files and not loaded.files:
                run.sources = {
                    "files": 0,
                    "lines": 0,
                    "amount": "0.00",
                    "refused": loaded.refused,
                    "vouchers": 0,
                    "clearing_lines": 0,
                }
                raise AllRefused(f"银行文件 {len(loaded.refused)} 个全部被拒收，未对账（原因见数据来源）")
            book = load_book(con, book_url, run.period_end.year, work)
            clearing = load_pboc_monthly(con, pboc_file) if pboc_file else 0
            if only_banks:
                for table in ("book", "clearing"):
                    con.execute(
                        f"DELETE FROM {table} WHERE bank_code NOT IN (SELECT unnest(?::VARCHAR[]))",  # noqa: S608
                        [list(only_banks)],
                    )
                book = con.execute("SELECT count(*) FROM book").fetchone()[0]
            mq = load_mq(con, mq_journals, work) if mq_journals is not None else None
            now = timezone.now().astimezone(UTC).replace(tzinfo=None)
            result = reconcile(con, tolerance, run.as_of, clearing_period="month", mq_now=now)
            found = [
                {
                    **b,
                    "line_details": _line_details(con, b["lines"])
                    + _message_details(con, b.get("messages", [])),
                    "bank_code": _break_bank(con, b),
                }
                for b in result.breaks
                if (pboc_file or not b["kind"].startswith("clearing")) and b["kind"] != "book_only"
            ]
            # 仅我方有 only for the vouchers of the period: a voucher of an earlier day was paid in that day's files,
            # which a run over the period's files did not read (the book is the whole year's).
            unseen = [v for b in result.breaks if b["kind"] == "book_only" for v in b["vouchers"]]
            inside = {
                r[0]
                for r in con.execute(
                    "SELECT vou_no FROM book WHERE vou_no IN (SELECT unnest(?::VARCHAR[])) "
                    "AND vou_date BETWEEN ? AND ?",
                    [unseen, run.period_start, run.period_end],
                ).fetchall()
            }
            found += [
                {**b, "line_details": [], "bank_code": _break_bank(con, b)}
                for b in result.breaks
                if b["kind"] == "book_only" and set(b["vouchers"]) <= inside
            ]
            for b in found:
                b["fingerprint"] = fingerprint(b["kind"], b["vouchers"], b["line_details"], b["note"])
            totals = statements.compute_totals(con, found, run.period_start, run.period_end)
            con.close()
    except Exception as exc:
        run.status, run.message, run.finished_at = (
            ReconRun.Status.FAILED,
            str(exc)[:2000] if isinstance(exc, AllRefused) else f"{type(exc).__name__}：{exc}"[:2000],
            timezone.now(),
        )
        run.save(update_fields=["status", "message", "finished_at", "sources"])
        raise
    run.sources = {
        "files": loaded.files,
        "lines": loaded.lines,
        "amount": f"{loaded.amount:.2f}",
        "refused": loaded.refused,
        "vouchers": book,
        "clearing_lines": clearing,
    }
    if mq is not None:
        run.sources["mq"] = {
            "journals": mq.journals,
            "messages": mq.messages,
            "refused": mq.refused,
            "receipted": result.mq_receipted,
            "in_transit": result.mq_in_transit,
        }
    run.totals = totals
    for name in ("matched_by_key", "matched_by_attributes", "split_vouchers", "in_transit", "cleared_lines"):
        setattr(run, name, getattr(result, name))
    keep_breaks(run, found, banks=only_banks, clearing=pboc_file is not None)
    return run


@transaction.atomic
def keep_breaks(
    run: ReconRun, found: list[dict], banks: list[str] | None = None, clearing: bool = True
) -> None:
    """Carry or open each found break; mark the open breaks of earlier runs of the same scope that this run no
    longer finds as 已消除; finish the run; record it in the audit chain. The scope is the run's region and
    database, narrowed to ``banks`` when the run covered only those, and without the clearing classes when it had
    no clearing file (what a run did not look at, it cannot say is gone). A run whose period has a signed month is
    refused; breaks belonging to a signed month of a bank (found by a run of another period) are left as signed."""
    ensure_can_run(run.region_id, run.period_start, run.period_end)
    signed = signed_periods(run.region_id)

    def frozen(bank_code: str, day) -> bool:
        return bool(bank_code and day and (bank_code, day.replace(day=1)) in signed)

    scope = ReconBreak.objects.filter(region=run.region, database=run.database)
    if banks:
        scope = scope.filter(bank_code__in=banks)
    if not clearing:
        scope = scope.exclude(kind__startswith="clearing")
    open_by_print = {b.fingerprint: b for b in scope.filter(state=ReconBreak.State.OPEN).select_for_update()}
    # A difference someone resolved with a reason (a known, explained difference) that this run finds again is the
    # same record: it stays resolved, with its reason, owner, comments and ticket, and is not opened a second time.
    prints = [
        b.get("fingerprint") or fingerprint(b["kind"], b["vouchers"], b["line_details"], b["note"])
        for b in found
    ]  # run_reconciliation has computed them already (the statements' totals name breaks by them)
    resolved_by_print = {
        b.fingerprint: b
        for b in scope.filter(state=ReconBreak.State.RESOLVED, fingerprint__in=prints)
        .order_by("resolved_at")
        .select_for_update()
    }
    seen, new, untouched, still_resolved = set(), 0, 0, 0
    for b, key in zip(found, prints, strict=True):
        lines = b["line_details"]
        if key in seen:
            continue
        seen.add(key)
        existing = open_by_print.get(key)
        if existing is None and key in resolved_by_print:
            existing = resolved_by_print[key]
            still_resolved += 1
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
    # what this run did not look at, it cannot say is gone: a break of a day outside its period stays open
    gone = [
        b
        for k, b in open_by_print.items()
        if k not in seen
        and not frozen(b.bank_code, b.day)
        and (b.day is None or run.period_start <= b.day <= run.period_end)
    ]
    for b in gone:
        b.state, b.resolution = ReconBreak.State.CLEARED, f"第 {run.pk} 次对账已无此差异"
        b.resolved_at = timezone.now()
        b._period_checked = True
        b.save(update_fields=["state", "resolution", "resolved_at"])
    run.breaks_new = new
    run.breaks_open = len(seen) - still_resolved
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


# --- the platform's pages and API (views.py, api.py) ----------------------------------------------------------
# Who sees what: runs and breaks by region (RegionScopedQuerySet); a 银行用户 only the breaks and files of the agent
# bank of their account (User.bank_code) — one without a bank code sees none.

BREAK_SEVERITY = "一般"


def restricted_bank(user) -> str | None:
    """The bank a 银行用户 is held to (``""`` when their account names none); None for everyone else."""
    from caiwei.accounts.roles import FINANCE_ROLES, OPS_ROLES, Role

    if user.has_role(Role.BANK_USER) and not user.has_role(*(OPS_ROLES | FINANCE_ROLES)):
        return user.bank_code or ""
    return None


def visible_runs(user):
    return ReconRun.objects.visible_to(user).select_related(
        "region", "database", "database__target", "created_by"
    )


def visible_breaks(user):
    qs = ReconBreak.objects.visible_to(user).select_related(
        "region", "owner", "ticket", "last_run", "database"
    )
    bank = restricted_bank(user)
    if bank is not None:
        qs = qs.filter(bank_code=bank) if bank else qs.none()
    return qs


def visible_formats(user):
    from .models import BankFormat

    return BankFormat.objects.select_related("updated_by")


def run_databases(user):
    """The registered finance databases a reconciliation may read: those of the user's regions."""
    from caiwei.checks.services import visible_databases

    return visible_databases(user)


def ensure_shipped_formats(model=None) -> int:
    """The layouts that ship with Caiwei (recon/layouts/*.yaml) as BankFormat rows, where missing (a data migration
    passes its historical model). Returns how many were created."""
    if model is None:
        from .models import BankFormat as model
    paths = sorted(formats.LAYOUT_DIR.glob("*.yaml"))
    if model.objects.filter(code__in=[p.stem for p in paths]).count() == len(paths):
        return 0
    created = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        definition = formats.parse_definition(text)
        _, made = model.objects.get_or_create(
            code=path.stem, defaults={"name": definition.name[:80], "definition": text, "version": 1}
        )
        created += made
    return created


def format_definition(fmt) -> formats.Definition:
    try:
        return formats.parse_definition(fmt.definition)
    except formats.DefinitionError as exc:
        raise ValidationError(f"银行文件格式“{fmt.name}”的定义有误：{exc}") from exc


def save_format(user, fmt, *, definition: str, name: str = "", bank_code: str = "", code: str = ""):
    """A new version of a bank file format (or a new format when ``fmt`` is None): the YAML is checked first
    (DefinitionError → a Chinese ValidationError naming the problem, nothing saved)."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability

    from .models import BankFormat

    ensure(user, Capability.RECON_FORMATS, "recon.format")
    try:
        parsed = formats.parse_definition(definition)
    except formats.DefinitionError as exc:
        raise ValidationError({"definition": f"格式定义有误：{exc}"}) from exc
    bank_code = (bank_code or "").strip()
    if len(bank_code) > 12:
        raise ValidationError({"bank_code": "银行编码至多 12 个字符"})
    with transaction.atomic():
        if fmt is None:
            code = (code or "").strip()
            if BankFormat.objects.filter(code=code).exists():
                raise ValidationError({"code": f"编号“{code}”已存在"})
            fmt = BankFormat(code=code, version=1)
        else:
            fmt = BankFormat.objects.select_for_update().get(pk=fmt.pk)
            fmt.version += 1
        before = {"version": fmt.version - 1, "definition": fmt.definition} if fmt.pk else None
        fmt.name = (name or "").strip() or parsed.name[:80]
        fmt.bank_code = bank_code
        fmt.definition = definition
        fmt.updated_at, fmt.updated_by = timezone.now(), user
        fmt.full_clean()
        fmt.save()
        record(
            AuditAction.UPDATE if before else AuditAction.CREATE,
            obj=fmt,
            before=before,
            after={"version": fmt.version, "definition": definition},
            detail={"action": "保存银行文件格式"},
        )
    return fmt


def preview_format(user, definition_text: str, upload, rows: int = 10) -> dict:
    """The first rows of an uploaded sample as ``definition_text`` reads them (each field by name), or the
    FormatError with file, line, offset and field; a definition that does not parse answers ``definition_error``."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability

    ensure(user, Capability.RECON_FORMATS, "recon.format.preview")
    try:
        definition = formats.parse_definition(definition_text)
    except formats.DefinitionError as exc:
        return {
            "definition_error": f"格式定义有误：{exc}",
            "columns": [],
            "fields": [],
            "rows": [],
            "table": [],
            "headers": [],
        }
    name = Path(getattr(upload, "name", "") or "sample").name[:120]
    with tempfile.TemporaryDirectory(prefix="caiwei-preview-") as tmp:
        path = Path(tmp) / f"sample{Path(name).suffix[:10]}"
        _write_upload(upload, path)
        out = formats.preview(definition, path, rows=rows, name=name)
    out["headers"] = [{"field": f, "label": formats.FIELDS[f][0]} for f in out["fields"]]
    out["table"] = [{"line": r["line"], "values": [r.get(f, "") for f in out["fields"]]} for r in out["rows"]]
    return out


MAX_UPLOAD = 512 * 1024 * 1024


def _write_upload(upload, path: Path) -> int:
    size = 0
    with path.open("wb") as out:
        for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise ValidationError(
                    f"文件“{getattr(upload, 'name', '')}”超过 {MAX_UPLOAD // 1024 // 1024} MB"
                )
            out.write(chunk)
    return size


def _safe_name(name: str, index: int) -> str:
    """Each upload in its own folder under its own name (what the refusals and the bank lines name)."""
    base = Path(name or "").name.replace("\x00", "")[:120].lstrip(".") or f"file-{index}"
    return f"{index:02d}/{base}"


def upload_dir(run: ReconRun) -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT) / "recon" / f"run-{run.pk}"


def start_run(
    user,
    *,
    region,
    database,
    period_start: date,
    period_end: date,
    as_of: date | None = None,
    tolerance: dict | None = None,
    uploads: list[tuple] = (),
    use_sandbox: bool = False,
    inline: bool = False,
) -> ReconRun:
    """Queue a reconciliation for the worker (it runs at once where huey is immediate). ``uploads``: (file,
    BankFormat, bank code) — each file read with its format's definition as it is now; or ``use_sandbox``: the
    sandbox's own bank files and clearing file (the database must be the sandbox)."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability
    from caiwei.jobs import runner
    from caiwei.regions.scoping import visible_regions

    if user is not None:
        ensure(user, Capability.RECON_RUN, "recon.run")
        if not visible_regions(user).filter(pk=region.pk).exists():
            raise PermissionDenied("无权在该区划对账")
        if not run_databases(user).filter(pk=database.pk).exists():
            raise PermissionDenied("无权访问该财政数据库")
    errors = []
    as_of = as_of or period_end
    if not (period_start <= period_end <= as_of):
        errors.append("应满足 期间起 ≤ 期间止 ≤ 对账日")
    elif (period_end - period_start).days > 400 or period_start.year != period_end.year:
        errors.append("对账期间应在同一年度内")
    else:
        try:  # a signed month is refused on the form, before a run or an uploaded file is written
            ensure_can_run(region.pk, period_start, period_end)
        except PeriodSigned as exc:
            errors.extend(exc.messages)
    try:
        tol = Tolerance.from_dict(tolerance or {})
    except ValueError as exc:
        errors.append(str(exc))
        tol = None
    if not database.target.region.path.startswith(region.path):
        # Breaks are seen by the run's region: a county's run over a league's database would show it the league's.
        errors.append(f"对账所属区划应为财政数据库所属的{database.target.region.name}或其上级")
    if use_sandbox and uploads:
        errors.append("上传银行文件与使用演练库的银行文件只能选一种")
    elif not use_sandbox and not uploads:
        errors.append("请上传至少一个银行文件，或选择使用演练库的银行文件")
    if use_sandbox and not database.target.is_sandbox:
        errors.append(f"“{database}”不是演练库，不能使用演练库的银行文件")
    for i, (upload, fmt, bank) in enumerate(uploads, 1):
        if fmt is None:
            errors.append(f"第 {i} 个文件未选择银行文件格式")
            continue
        try:
            format_definition(fmt)
        except ValidationError as exc:
            errors.extend(exc.messages)
        if not (bank or fmt.bank_code):
            errors.append(f"第 {i} 个文件（{getattr(upload, 'name', '')}）未填写银行编码")
    if errors:
        raise ValidationError(errors)
    run = ReconRun.objects.create(
        region=region,
        database=database,
        period_start=period_start,
        period_end=period_end,
        as_of=as_of,
        tolerance={
            "date_window": tol.date_window,
            "amount": f"{tol.amount:.2f}",
            "transit_days": tol.transit_days,
        },
        created_by=user,
    )
    files = []
    if uploads:
        folder = upload_dir(run)
        folder.mkdir(parents=True, exist_ok=True)
        for i, (upload, fmt, bank) in enumerate(uploads, 1):
            path = folder / _safe_name(getattr(upload, "name", ""), i)
            path.parent.mkdir(exist_ok=True)
            _write_upload(upload, path)
            files.append(
                {
                    "path": str(path),
                    "name": Path(getattr(upload, "name", "") or path.name).name[:120],
                    "format": fmt.code,
                    "version": fmt.version,
                    "definition": fmt.definition,
                    "bank": (bank or fmt.bank_code).strip()[:12],
                }
            )
    params = {"run": run.pk, "sandbox": bool(use_sandbox), "files": files}
    record(
        AuditAction.CREATE,
        obj=run,
        detail={
            "action": "发起对账",
            "sandbox": bool(use_sandbox),
            "files": [{k: f[k] for k in ("name", "format", "version", "bank")} for f in files],
        },
    )
    if inline:
        return execute(params)
    job = runner.start(
        "recon.run",
        user=user,
        title=f"对账：{database}（{period_start}—{period_end}）",
        params=params,
        region=region,
    )
    run.refresh_from_db()
    run.job = job
    return run


def run_job(run: ReconRun):
    """The background job of a run (None for runs from the command line)."""
    from caiwei.jobs.models import Job

    return Job.objects.filter(kind="recon.run", params__run=run.pk).order_by("-pk").first()


def execute(params: dict, log=None) -> ReconRun:
    """Run what ``start_run`` queued (in the worker): the files as stored, or the sandbox's."""
    from caiwei.sandbox.service import bank_files_dir

    from .sources import sandbox_files

    run = ReconRun.objects.select_related("database", "database__target").get(pk=params["run"])
    database = run.database
    if database.dialect == database.Dialect.SQLITE:  # judged again now, as for a data check's connection
        from caiwei.checks import sqlitefile

        try:
            sqlitefile.resolve(database.database)
        except sqlitefile.TargetRefused as exc:
            run.status, run.message, run.finished_at = ReconRun.Status.FAILED, str(exc)[:2000], timezone.now()
            run.save(update_fields=["status", "message", "finished_at"])
            return run
    url = database.url()
    pboc, inputs = None, []
    if params.get("sandbox"):
        folder = bank_files_dir()
        stored = {f.code: f for f in visible_formats(None)}
        shipped = formats.shipped()
        bank_files, parsed = [], {}
        # Each file with the platform's current version of its bank's layout (editable), else the shipped one.
        for path, definition, bank in sandbox_files(folder, url):
            code = next((k for k, d in shipped.items() if d == definition), "")
            fmt = stored.get(code)
            if fmt is not None:
                if code not in parsed:
                    parsed[code] = format_definition(fmt)
                definition = parsed[code]
            bank_files.append((path, definition, bank))
            inputs.append(
                {"file": path.name, "bank": bank, "format": code, "version": fmt.version if fmt else 0}
            )
        pboc = next(iter(sorted((folder / "pboc").glob("*.xml"))), None)
        only = None
    else:
        bank_files = [
            (Path(f["path"]), formats.parse_definition(f["definition"]), f["bank"]) for f in params["files"]
        ]
        for f, (path, _, _) in zip(params["files"], bank_files, strict=True):
            inputs.append(
                {
                    "file": path.name,
                    "name": f["name"],
                    "bank": f["bank"],
                    "format": f["format"],
                    "version": f["version"],
                }
            )
        only = sorted({f["bank"] for f in params["files"]})
    if log:
        log(
            f"银行文件 {len(bank_files)} 个{'，人民银行清算文件 ' + pboc.name if pboc else ''}；财政库 {run.database}"
        )
    try:
        run_reconciliation(run, book_url=url, bank_files=bank_files, pboc_file=pboc, only_banks=only)
    finally:
        run.refresh_from_db()
        sources = dict(run.sources or {})
        sources["inputs"] = inputs
        sources["pboc"] = pboc.name if pboc else ""
        ReconRun.objects.filter(pk=run.pk).update(sources=sources)
        run.sources = sources
    return run


def source_rows(run: ReconRun, user) -> dict:
    """The files of a run for the page: each input with its bank and whether it was refused (and why); a
    银行用户 sees only their bank's."""
    sources = run.sources or {}
    refused = {}
    for r in sources.get("refused", []):
        refused.setdefault(r.get("file"), r)
    bank = restricted_bank(user)
    rows = []
    for i in sources.get("inputs", []):
        if bank is not None and i.get("bank") != bank:
            continue
        rows.append({**i, "error": refused.get(i.get("file"))})
    listed = {i.get("file") for i in sources.get("inputs", [])}
    if bank is None:  # runs from the command line list no inputs: their refused files still show
        rows += [{"file": f, "error": r} for f, r in refused.items() if f not in listed]
    return {"rows": rows, "refused": [r for r in rows if r.get("error")]}


def break_owners(region):
    """Who a break may be handed to: active accounts that may run reconciliations, granted ``region`` (or above)."""
    from caiwei.accounts.models import User
    from caiwei.accounts.roles import Capability, roles_with

    parts = [p for p in region.path.split("/") if p]
    paths = ["".join(f"{p}/" for p in parts[: i + 1]) for i in range(len(parts))]
    return (
        User.objects.filter(
            role_grants__role__in=roles_with(Capability.RECON_RUN),
            is_active=True,
            region_grants__region__path__in=paths,
        )
        .distinct()
        .order_by("username")
    )


def _ensure_run_right(user, brk: ReconBreak, what: str) -> None:
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability

    ensure(user, Capability.RECON_RUN, what)
    if not visible_breaks(user).filter(pk=brk.pk).exists():
        raise PermissionDenied("无权处理该差异")


def _break_repr(brk: ReconBreak) -> str:
    return f"差异 #{brk.pk} {brk}"[:200]


def assign_break(user, brk: ReconBreak, owner) -> ReconBreak:
    """指定责任人 (None: clear it): an account that may work reconciliations in the break's region."""
    _ensure_run_right(user, brk, "recon.break.assign")
    if owner is not None and not break_owners(brk.region).filter(pk=owner.pk).exists():
        raise ValidationError(f"{owner} 不能处理{brk.region.name}的对账差异，不能指定为责任人")
    with transaction.atomic():
        before = str(brk.owner or "")
        brk.owner = owner
        brk.save(update_fields=["owner"])
        record(
            AuditAction.UPDATE,
            obj=brk,
            object_repr=_break_repr(brk),
            before={"owner": before},
            after={"owner": str(owner or "")},
            detail={"action": "指定责任人"},
        )
    return brk


def _long_text(value: str, field: str, label: str, when_empty: str) -> str:
    """A comment or a reason as written: required, at most 4000 characters, no control characters."""
    from caiwei.inputs import text_problem

    value = (value or "").strip()
    if not value:
        raise ValidationError({field: when_empty})
    if len(value) > 4000:
        raise ValidationError({field: f"{label}至多 4000 字"})
    if problem := text_problem(value, multiline=True):
        raise ValidationError({field: f"{label}{problem}"})
    return value


def comment_break(user, brk: ReconBreak, text: str):
    """填写意见: anyone who sees the break (a bank user on their bank's)."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability

    from .models import BreakComment

    ensure(user, Capability.RECON_VIEW, "recon.break.comment")
    if not visible_breaks(user).filter(pk=brk.pk).exists():
        raise PermissionDenied("无权查看该差异")
    text = _long_text(text, "text", "意见", "意见不能为空")
    with transaction.atomic():
        note = BreakComment.objects.create(brk=brk, author=user, text=text)
        record(
            AuditAction.CREATE,
            obj=note,
            object_repr=f"{_break_repr(brk)} 的意见"[:200],
            after={"break": brk.pk, "text": text[:500]},
            detail={"action": "填写差异意见"},
        )
    return note


def resolve_break(user, brk: ReconBreak, reason: str) -> ReconBreak:
    """标为已解决 with the reason (required: an empty one is refused and nothing is saved)."""

    _ensure_run_right(user, brk, "recon.break.resolve")
    reason = _long_text(reason, "reason", "处理说明", "请填写处理说明：差异须写明原因才能标为已解决")
    with transaction.atomic():
        brk = ReconBreak.objects.select_for_update().get(pk=brk.pk)
        if brk.state != ReconBreak.State.OPEN:
            raise ValidationError(f"该差异已{brk.get_state_display()}，不能再标为已解决")
        brk.state, brk.resolution = ReconBreak.State.RESOLVED, reason
        brk.resolved_at, brk.resolved_by = timezone.now(), user
        brk.save(update_fields=["state", "resolution", "resolved_at", "resolved_by"])
        record(
            AuditAction.UPDATE,
            obj=brk,
            object_repr=_break_repr(brk),
            before={"state": ReconBreak.State.OPEN},
            after={"state": brk.state, "resolution": reason[:500]},
            detail={"action": "标为已解决"},
        )
    return brk


def link_ticket(user, brk: ReconBreak, number: str) -> ReconBreak:
    """关联已有工单: a ticket the user sees, of the break's region (or a region above it)."""
    from caiwei.desk.services import visible_tickets

    _ensure_run_right(user, brk, "recon.break.ticket")
    number = (number or "").strip()
    ticket = visible_tickets(user).filter(number=number).first() if number else None
    if ticket is None:
        raise ValidationError({"ticket": f"工单“{number}”不存在或不在您的授权范围内"})
    if not brk.region.path.startswith(ticket.region.path):
        raise ValidationError({"ticket": f"工单 {number} 属于{ticket.region.name}，与差异的区划不符"})
    with transaction.atomic():
        before = brk.ticket.number if brk.ticket_id else ""
        brk.ticket = ticket
        brk.save(update_fields=["ticket"])
        record(
            AuditAction.UPDATE,
            obj=brk,
            object_repr=_break_repr(brk),
            before={"ticket": before},
            after={"ticket": ticket.number},
            detail={"action": "关联工单"},
        )
    return brk


def open_ticket(user, brk: ReconBreak, assignee=None, severity: str | None = None):
    """由差异开工单 (the path of checks' 由问题开工单: desk.services.create_ticket): one ticket per break — a break
    that has one returns it; handed to an engineer of the region if one is chosen."""
    from django.urls import reverse

    from caiwei.checks.services import check_ticket_choice, finding_ticket

    _ensure_run_right(user, brk, "recon.break.ticket")
    if brk.ticket_id:
        return brk.ticket
    ensure_break_writable(brk, "由差异开工单")  # a signed month opens no ticket either
    severity = severity or BREAK_SEVERITY
    check_ticket_choice(brk.region, severity, assignee)
    lines = [
        f"{x.get('file')} 第 {x.get('line')} 行 流水号 {x.get('serial') or '—'} 金额 {x.get('amount')}"
        for x in (brk.lines or [])[:20]
    ]
    description = "\n".join(
        [
            f"对账差异：{brk.get_kind_display()}——{brk.reason}",
            f"财政区划：{brk.region.name}；财政数据库：{brk.database or '—'}；银行：{brk.bank_code or '—'}",
            f"首次发现：对账 #{brk.first_run_id}；最近发现：对账 #{brk.last_run_id}",
            f"支付凭证号：{'、'.join(brk.vouchers[:50]) or '—'}",
            f"我方金额：{brk.book_amount if brk.book_amount is not None else '—'}；"
            f"银行金额：{brk.bank_amount if brk.bank_amount is not None else '—'}",
            *(["银行明细：", *lines] if lines else []),
            *([f"备注：{brk.note}"] if brk.note else []),
            "",
            f"差异页：{reverse('recon:break', args=[brk.pk])}",
        ]
    )
    with transaction.atomic():
        ticket = finding_ticket(
            user,
            region=brk.region,
            system="对账管理",
            module="银行对账",
            severity=severity,
            assignee=assignee,
            title=f"对账差异：{brk.get_kind_display()} {'、'.join(brk.vouchers[:2]) or brk.note}",
            description=description,
        )
        brk.ticket = ticket
        brk.save(update_fields=["ticket"])  # through save: a signed period refuses (models.ReconBreak.save)
        record(
            AuditAction.UPDATE,
            obj=brk,
            object_repr=_break_repr(brk),
            after={"ticket": ticket.number, "severity": severity, "assignee": str(assignee or "")},
            detail={"action": "由差异开工单"},
        )
    brk.refresh_from_db()
    return ticket


def filter_breaks(
    qs,
    *,
    state: str = "",
    kind: str = "",
    bank: str = "",
    min_age: int | None = None,
    max_age: int | None = None,
    run: int | None = None,
    owner: str = "",
):
    """The breaks list's filters: state, class, bank, age in days (from when first found), run, owner."""
    from datetime import datetime, time

    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    if bank:
        qs = qs.filter(bank_code=bank)
    if run:
        qs = qs.filter(last_run_id=run)
    if owner == "-":
        qs = qs.filter(owner__isnull=True)
    elif owner:
        qs = qs.filter(owner__username=owner)
    today = timezone.localdate()
    tz = timezone.get_current_timezone()
    if min_age is not None:  # found on or before today − min_age
        qs = qs.filter(created_at__lt=datetime.combine(today - timedelta(days=min_age - 1), time.min, tz))
    if max_age is not None:
        qs = qs.filter(created_at__gte=datetime.combine(today - timedelta(days=max_age), time.min, tz))
    return qs


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


# === Bank file sources 银行文件来源 (views_sources.py and the API's /sources) ==========================================
# Set up by a 项目经理 or engineer (RECON_FORMATS) for a region of theirs. The password or private key is write-only:
# sealed at once with the source's connection (host, port, user), never shown back; an empty one keeps the sealed
# one — but only while the connection stays the same, as for the data checks' databases (checks.services). Every save
# is audited by the model signals (the sealed fields masked: BankFileSource.audit_secret_fields).

REENTER_NOTE = "修改了{fields}，请重新输入密码或私钥：已保存的凭据只用于原来的连接"


def visible_sources(user):
    from .models import BankFileSource

    return BankFileSource.objects.visible_to(user).select_related("region", "bank_format")


def source_intakes(user, source=None, limit: int = 20):
    """The latest files taken by the user's sources (by one source when given)."""
    from .models import BankFileIntake

    qs = BankFileIntake.objects.filter(source__in=visible_sources(user)).select_related("source")
    if source is not None:
        qs = qs.filter(source=source)
    return qs.order_by("-fetched_at", "-id")[:limit]


def save_source(user, source, *, password: str = "", private_key: str = "", clear_secret: bool = False):
    """Create or change a bank file source (the model's clean() = intake.source_problems: Chinese errors by field,
    nothing saved). ``password``/``private_key`` replace the sealed ones when given; ``clear_secret`` drops both."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability
    from caiwei.regions.scoping import visible_regions

    from .models import BankFileSource

    ensure(user, Capability.RECON_FORMATS, "recon.source")
    if not visible_regions(user).filter(pk=source.region_id).exists():
        raise PermissionDenied("无权在该区划登记银行文件来源")
    stored = BankFileSource.objects.filter(pk=source.pk).first() if source.pk else None
    if stored is not None and not visible_sources(user).filter(pk=stored.pk).exists():
        raise PermissionDenied("无权修改该银行文件来源")
    if stored is not None:  # the sealed secrets are never taken from a form or a body
        source.secret, source.key_secret = stored.secret, stored.key_secret
    if clear_secret or source.kind == BankFileSource.Kind.FOLDER:
        source.secret = source.key_secret = ""
    elif password or private_key:
        if password:
            source.set_password(password)  # sealed for the connection as it now is
        if private_key:
            source.set_private_key(private_key)
    problems: dict[str, list[str]] = {}
    if (
        not (clear_secret or password or private_key)
        and stored is not None
        and (source.secret or source.key_secret)
        and stored.connection_identity() != source.connection_identity()
    ):
        fields = [
            str(BankFileSource._meta.get_field(f).verbose_name)
            for f in ("host", "port", "username")
            if getattr(stored, f) != getattr(source, f)
        ]
        problems["password"] = [REENTER_NOTE.format(fields="、".join(fields))]
    elif source.kind == BankFileSource.Kind.SFTP and not (source.secret or source.key_secret):
        problems["password"] = ["SFTP 来源须填写登录密码或私钥"]
    try:
        source.full_clean()
    except ValidationError as exc:
        problems = exc.update_error_dict(problems)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        source.save()
        if password or private_key:
            record(
                AuditAction.UPDATE,
                obj=source,
                detail={
                    "action": "设置 SFTP 登录凭据（加密保存，不记内容）",
                    "password": bool(password),
                    "private_key": bool(private_key),
                },
            )
    return source


def scan_source_host_key(user, host: str, port: int) -> dict:
    """The host key an SFTP server shows, for the operator to check with the bank and put in the field (nothing is
    pinned here). IntakeError (Chinese) when the server cannot be reached."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability

    from .intake import IntakeError, scan_host_key

    ensure(user, Capability.RECON_FORMATS, "recon.source.scan")
    host = (host or "").strip()
    if not host or any(c.isspace() for c in host) or len(host) > 120:
        raise IntakeError("请先填写 SFTP 主机")
    if not 1 <= (port or 0) <= 65535:
        raise IntakeError("端口应在 1～65535 之间")
    return scan_host_key(host, port)


def pull_source_now(user, source):
    """Start the ``recon.pull`` job of one source now (as the tick does when it is due); returns the job."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability
    from caiwei.jobs.runner import start

    ensure(user, Capability.RECON_FORMATS, "recon.source.pull")
    if not visible_sources(user).filter(pk=source.pk).exists():
        raise PermissionDenied("无权拉取该银行文件来源")
    return start(
        "recon.pull",
        user=user,
        title=f"拉取银行文件：{source.name}",
        params={"source": source.pk},
        region=source.region,
    )
