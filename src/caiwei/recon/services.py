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

from . import formats
from .engine import DUCKDB_MEMORY, Tolerance, create_inputs, load_business_days, reconcile
from .models import ReconBreak, ReconRun
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
    every other bank's vouchers 仅我方有. Without ``pboc_file`` there is no clearing side, so no clearing breaks."""
    tolerance = Tolerance.from_dict(run.tolerance)
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
                if pboc_file or not b["kind"].startswith("clearing")
            ]
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
    no clearing file (what a run did not look at, it cannot say is gone)."""
    scope = ReconBreak.objects.filter(region=run.region, database=run.database)
    if banks:
        scope = scope.filter(bank_code__in=banks)
    if not clearing:
        scope = scope.exclude(kind__startswith="clearing")
    open_by_print = {b.fingerprint: b for b in scope.filter(state=ReconBreak.State.OPEN).select_for_update()}
    seen, new = set(), 0
    for b in found:
        lines = b["line_details"]
        key = fingerprint(b["kind"], b["vouchers"], lines, b["note"])
        if key in seen:
            continue
        seen.add(key)
        existing = open_by_print.get(key)
        if existing:
            existing.last_run = run
            existing.lines = lines
            existing.book_amount, existing.bank_amount = b["book_amount"], b["bank_amount"]
            existing.bank_code = b.get("bank_code", existing.bank_code)
            existing.save(update_fields=["last_run", "lines", "book_amount", "bank_amount", "bank_code"])
            continue
        ReconBreak.objects.create(
            region=run.region,
            database=run.database,
            fingerprint=key,
            bank_code=b.get("bank_code", ""),
            kind=b["kind"],
            vouchers=b["vouchers"],
            lines=lines,
            book_amount=b["book_amount"],
            bank_amount=b["bank_amount"],
            note=b["note"][:200],
            first_run=run,
            last_run=run,
        )
        new += 1
    gone = [b for k, b in open_by_print.items() if k not in seen]
    for b in gone:
        b.state, b.resolution = ReconBreak.State.CLEARED, f"第 {run.pk} 次对账已无此差异"
        b.resolved_at = timezone.now()
        b.save(update_fields=["state", "resolution", "resolved_at"])
    run.breaks_new = new
    run.breaks_open = len(seen)
    run.status, run.finished_at = ReconRun.Status.DONE, timezone.now()
    run.save()
    record(
        AuditAction.CREATE,
        obj=run,
        detail={"breaks_new": new, "breaks_open": len(seen), "cleared": len(gone), "sources": run.sources},
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


def comment_break(user, brk: ReconBreak, text: str):
    """填写意见: anyone who sees the break (a bank user on their bank's)."""
    from caiwei.accounts.permissions import ensure
    from caiwei.accounts.roles import Capability
    from caiwei.inputs import text_problem

    from .models import BreakComment

    ensure(user, Capability.RECON_VIEW, "recon.break.comment")
    if not visible_breaks(user).filter(pk=brk.pk).exists():
        raise PermissionDenied("无权查看该差异")
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "意见不能为空"})
    if len(text) > 4000:
        raise ValidationError({"text": "意见至多 4000 字"})
    if problem := text_problem(text, multiline=True):
        raise ValidationError({"text": f"意见{problem}"})
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
    from caiwei.inputs import text_problem

    _ensure_run_right(user, brk, "recon.break.resolve")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "请填写处理说明：差异须写明原因才能标为已解决"})
    if len(reason) > 4000:
        raise ValidationError({"reason": "处理说明至多 4000 字"})
    if problem := text_problem(reason, multiline=True):
        raise ValidationError({"reason": f"处理说明{problem}"})
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

    from caiwei.checks.services import ticket_engineers
    from caiwei.desk.models import SEVERITY_CHOICES, Ticket
    from caiwei.desk.services import create_ticket

    _ensure_run_right(user, brk, "recon.break.ticket")
    if brk.ticket_id:
        return brk.ticket
    severity = severity or BREAK_SEVERITY
    allowed = [s for s, _ in SEVERITY_CHOICES]
    if severity not in allowed:
        raise ValidationError(f"严重程度“{severity}”不正确，应为 {'、'.join(allowed)} 之一")
    if assignee is not None and not ticket_engineers(brk.region).filter(pk=assignee.pk).exists():
        raise ValidationError(f"{assignee} 不是{brk.region.name}的二线工程师，不能分派给他")
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
        ticket = create_ticket(
            user,
            region=brk.region,
            channel=Ticket.Channel.CHECK,
            system="对账管理",
            module="银行对账",
            requester_kind=Ticket.RequesterKind.INTERNAL,
            ticket_type="数据变更",
            severity=severity,
            assignee=assignee,
            title=f"对账差异：{brk.get_kind_display()} {'、'.join(brk.vouchers[:2]) or brk.note}"[:120],
            description=description,
            requester_name=user.get_full_name() or user.username,
        )
        ReconBreak.objects.filter(pk=brk.pk).update(ticket=ticket)
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
