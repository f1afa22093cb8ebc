"""Reconciliation kept by the platform: a run's breaks are stored with their lines; the next run finds the same
differences again as the same breaks (owner and comments stay), opens only what is new, and marks what it no longer
finds as 已消除; a break cannot be resolved without a reason; the command line gives the same run as JSON."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from django.core.management import call_command
from django.db import IntegrityError, transaction

from caiwei.audit.models import AuditEvent
from caiwei.recon.models import BreakComment, ReconBreak, ReconRun
from caiwei.recon.services import run_reconciliation
from caiwei.recon.sources import sandbox_files
from caiwei.sandbox.generator import GenerateSpec, parse_faults
from caiwei.sandbox.service import run_generate

FAULTS = "voucher_missing_at_bank=1,bank_line_no_voucher=1,bank_amount_mismatch=1"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recon-svc")
    url = f"sqlite:///{tmp / 'sandbox.sqlite3'}"
    manifest = run_generate(
        url, GenerateSpec(payments=1500, seed=2, faults=parse_faults(FAULTS)), bank_dir=tmp / "files"
    )
    return url, tmp / "files", manifest


def new_run(region) -> ReconRun:
    return ReconRun.objects.create(
        region=region,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        as_of=date(2026, 12, 31),
        tolerance={"date_window": 1, "transit_days": 10},
    )


def run_once(sandbox, region) -> ReconRun:
    url, folder, _ = sandbox
    pboc = folder / "pboc" / "clearing-2026.xml"
    return run_reconciliation(
        new_run(region), book_url=url, bank_files=sandbox_files(folder, url), pboc_file=pboc
    )


def test_breaks_are_kept_and_carried_to_the_next_run(sandbox, regions, make_user):
    region = regions["152500000"]
    first = run_once(sandbox, region)
    assert first.status == ReconRun.Status.DONE and first.sources["refused"] == []
    kinds = sorted(ReconBreak.objects.filter(first_run=first).values_list("kind", flat=True))
    assert {"amount", "bank_only", "book_only"} <= set(kinds)
    assert first.breaks_new == first.breaks_open == len(kinds)
    bank_only = ReconBreak.objects.get(first_run=first, kind="bank_only")
    assert bank_only.lines and bank_only.lines[0]["file"] and bank_only.lines[0]["line"] >= 2
    owner = make_user("recon-owner", "engineer", regions=("152500000",))
    bank_only.owner = owner
    bank_only.save()
    BreakComment.objects.create(brk=bank_only, author=owner, text="已联系银行核实")
    assert AuditEvent.objects.filter(object_type="recon.reconrun", object_id=str(first.pk)).exists()

    second = run_once(sandbox, region)
    assert second.breaks_new == 0 and second.breaks_open == first.breaks_open
    carried = ReconBreak.objects.get(pk=bank_only.pk)
    assert carried.first_run == first and carried.last_run == second and carried.owner == owner
    assert carried.comments.count() == 1
    assert ReconBreak.objects.filter(region=region).count() == len(kinds)


def test_a_difference_that_is_gone_is_marked_cleared(sandbox, regions, tmp_path):
    url, folder, manifest = sandbox
    region = regions["152500000"]
    first = run_once(sandbox, region)
    amount_break = ReconBreak.objects.get(first_run=first, kind="amount")
    # Someone corrects the finance database: the voucher now carries what the bank paid.
    copy = tmp_path / "fixed.sqlite3"
    copy.write_bytes(Path(url.removeprefix("sqlite:///")).read_bytes())
    engine = sa.create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE pay_voucher_bill SET pay_amt = xpay_amt WHERE pay_cert_no = :k"),
            {"k": amount_break.vouchers[0]},
        )
    engine.dispose()
    second = run_reconciliation(
        new_run(region),
        book_url=f"sqlite:///{copy}",
        bank_files=sandbox_files(folder, url),
        pboc_file=folder / "pboc" / "clearing-2026.xml",
    )
    amount_break.refresh_from_db()
    assert amount_break.state == ReconBreak.State.CLEARED and str(second.pk) in amount_break.resolution
    assert second.breaks_open == first.breaks_open - 1


def test_a_resolved_difference_found_again_stays_the_same_resolved_record(sandbox, regions, make_user):
    region = regions["152500000"]
    first = run_once(sandbox, region)
    brk = ReconBreak.objects.get(first_run=first, kind="amount")
    owner = make_user("recon-resolver", "engineer", regions=("152500000",))
    BreakComment.objects.create(brk=brk, author=owner, text="银行少付，已约定下月补付")
    brk.state, brk.resolution, brk.resolved_by = ReconBreak.State.RESOLVED, "已约定下月补付", owner
    brk.save()
    count = ReconBreak.objects.filter(region=region).count()

    second = run_once(sandbox, region)
    brk.refresh_from_db()
    # not opened a second time: the same record, still resolved with its reason and comment, seen by this run
    assert ReconBreak.objects.filter(region=region).count() == count
    assert brk.state == ReconBreak.State.RESOLVED and brk.resolution == "已约定下月补付"
    assert brk.last_run == second and brk.comments.count() == 1
    assert second.breaks_new == 0 and second.breaks_open == first.breaks_open - 1


def test_resolving_needs_a_reason(sandbox, regions):
    first = run_once(sandbox, regions["152500000"])
    b = ReconBreak.objects.filter(first_run=first).first()
    b.state = ReconBreak.State.RESOLVED
    with pytest.raises(IntegrityError), transaction.atomic():
        b.save()


def test_command_line_json(sandbox, regions, settings, monkeypatch):
    url, folder, _ = sandbox
    out = StringIO()
    monkeypatch.setattr("sys.stdout", out)
    call_command(
        "recon",
        "run",
        "--db",
        url,
        "--files",
        str(folder),
        "--region",
        "152500000",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--json",
    )
    data = json.loads(out.getvalue())
    assert data["status"] == "done" and data["sources"]["refused"] == []
    assert {b["kind"] for b in data["breaks"]} >= {"amount", "bank_only", "book_only"}
    assert all(b["reason"] for b in data["breaks"])
