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


def run_reconciliation(
    run: ReconRun,
    *,
    book_url: str,
    bank_files: list[tuple[Path, formats.Definition, str]],
    pboc_file: Path | None = None,
    calendar: str = "workday",
    mq_journals: list[Path] | None = None,
) -> ReconRun:
    """Execute ``run`` (already saved, with region, period, as_of and tolerance) and keep its breaks. With
    ``mq_journals``, the message link's journals are checked too (receipts waited for until now)."""
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
            book = load_book(con, book_url, run.period_end.year, work)
            clearing = load_pboc_monthly(con, pboc_file) if pboc_file else 0
            mq = load_mq(con, mq_journals, work) if mq_journals is not None else None
            now = timezone.now().astimezone(UTC).replace(tzinfo=None)
            result = reconcile(con, tolerance, run.as_of, clearing_period="month", mq_now=now)
            found = [
                {
                    **b,
                    "line_details": _line_details(con, b["lines"])
                    + _message_details(con, b.get("messages", [])),
                }
                for b in result.breaks
            ]
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
    keep_breaks(run, found)
    return run


@transaction.atomic
def keep_breaks(run: ReconRun, found: list[dict]) -> None:
    """Carry or open each found break; mark the open breaks of earlier runs of the same scope that this run no
    longer finds as 已消除; finish the run; record it in the audit chain."""
    scope = ReconBreak.objects.filter(region=run.region, database=run.database)
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
            existing.save(update_fields=["last_run", "lines", "book_amount", "bank_amount"])
            continue
        ReconBreak.objects.create(
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
