"""Seals (封存点): signed checkpoints outside the database, written by the tick, after verify and after exports;
exported by the auditor only; never written over a truncated chain; checked by verify, also against a copy."""

import json
import os
import stat
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from caiwei.audit.chain import GENESIS, check_seals
from caiwei.audit.keys import audit_key
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.audit.seals import SealError, latest, load, seal, seal_path
from caiwei.jobs import runner

from .conftest import head_values, raw, set_head
from .test_chain import add, run_verify

pytestmark = pytest.mark.django_db


def test_seal_file_is_private_fsynced_and_chained(regions, seal_dir, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    add(2)
    first = seal()
    assert seal() is None  # nothing new since
    add(2)
    second = seal()
    assert (first.n, second.n) == (1, 2) and second.prev == first.mac and first.prev == GENESIS
    assert (second.seq, second.hash) == head_values()[:2]
    assert stat.S_IMODE(seal_path().stat().st_mode) == 0o600
    assert stat.S_IMODE(seal_dir.stat().st_mode) == 0o700
    assert len(synced) >= 2
    lines = seal_path().read_text().splitlines()
    assert [s.seq for s in check_seals(audit_key(), lines)] == [first.seq, second.seq]
    assert set(json.loads(lines[0])) == {"n", "seq", "hash", "at", "prev", "mac"}


def test_no_seal_over_a_truncated_chain(regions):
    add(3)
    old_seq, old_hash, old_mac = head_values()
    add(3)
    sealed = seal()
    raw("DELETE FROM {table} WHERE seq > %s", [old_seq])
    set_head(old_seq, old_hash, old_mac)
    before = seal_path().read_bytes()
    with pytest.raises(SealError, match=f"第 {sealed.seq} 行"):
        seal()
    add(5)  # the application appends again past the sealed seq: the sealed row is not the one there now
    with pytest.raises(SealError, match="不符"):
        seal()
    assert seal_path().read_bytes() == before


def test_no_seal_over_a_forged_head_or_broken_rows(regions):
    add(2)
    seal()
    add(2)
    seq, hash_, _ = head_values()
    set_head(seq, hash_, "0" * 64)
    with pytest.raises(SealError, match="校验码不符"):
        seal()
    raw("UPDATE {head} SET mac = %s", [head_values()[2]])
    raw("DELETE FROM {head}")
    with pytest.raises(SealError, match="链头缺失"):
        seal()


def test_no_seal_over_an_edited_row_since_the_last_seal(regions):
    add(2)
    seal()
    add(3)
    last = AuditEvent.objects.order_by("-seq").first()
    raw("UPDATE {table} SET actor = 'x' WHERE seq = %s", [last.seq - 1])
    with pytest.raises(SealError, match=f"第 {last.seq - 1} 行"):
        seal()


def test_tampered_seal_file_is_reported(regions):
    add(2)
    seal()
    add(2)
    seal()
    add(2)
    seal()
    lines = seal_path().read_text().splitlines()
    edited = json.loads(lines[1]) | {"seq": 1}
    seal_path().write_text("\n".join([lines[0], json.dumps(edited), lines[2]]) + "\n")
    code, _, err = run_verify()
    assert code == 1 and "封存文件第 2 条的校验码不符" in err
    seal_path().write_text("\n".join([lines[0], lines[2]]) + "\n")  # a seal removed from the middle
    code, _, err = run_verify()
    assert code == 1 and "封存文件第 2 条与前一条接不上" in err


def test_exported_copy_finds_a_deleted_seal_file(regions, tmp_path):
    """Database truncated, head replayed and the live seal file removed: the auditor's exported copy still knows."""
    add(3)
    old = head_values()
    add(3)
    sealed = seal()
    copy = tmp_path / "kept-by-auditor.jsonl"
    copy.write_bytes(seal_path().read_bytes())
    raw("DELETE FROM {table} WHERE seq > %s", [old[0]])
    set_head(*old)
    seal_path().unlink()
    assert run_verify()[0] == 0  # the database alone now looks intact
    code, _, err = run_verify("--seals", str(copy))
    assert code == 1 and f"记录到第 {sealed.seq} 行，库中只有 {old[0]} 行：尾部被截断" in err
    with pytest.raises(CommandError, match="封存点文件不存在"):
        run_verify("--seals", str(tmp_path / "nope.jsonl"))


def test_tick_seals_when_due(regions, settings, django_capture_on_commit_callbacks):
    settings.CAIWEI_AUDIT_SEAL_MINUTES = 5
    add(2)
    with django_capture_on_commit_callbacks(execute=True):
        runner.tick()
    first = latest()
    assert first is not None and first.seq == head_values()[0]
    add(2)
    with django_capture_on_commit_callbacks(execute=True):
        runner.tick()
    assert latest() == first  # not due yet
    settings.CAIWEI_AUDIT_SEAL_MINUTES = 0.0001
    with django_capture_on_commit_callbacks(execute=True):
        runner.tick()
    assert latest().seq == head_values()[0] and latest().n == 2


def test_tick_inside_a_transaction_waits_for_the_commit(regions):
    """A seal never covers rows that may still roll back: inside a transaction sealing waits for the commit."""
    add(2)
    runner.tick()
    assert latest() is None


def test_verify_command_and_job_seal(users, client_for, django_capture_on_commit_callbacks):
    add(2)
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run_verify()
    assert code == 0 and "尚无封存点" in out
    assert latest().seq == AuditEvent.objects.order_by("-seq").first().seq
    client = client_for(users["auditor"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/audit/verify/")
    job = runner.Job.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
    assert job.result["intact"] is True and "已对照 1 个封存点" in job.result["summary"]
    assert latest().n == 2


def test_page_verify_reports_truncation(users, client_for):
    add(3)
    old = head_values()
    add(3)
    seal()
    raw("DELETE FROM {table} WHERE seq > %s", [old[0]])
    set_head(*old)
    job = runner.start("audit.verify", user=users["auditor"])
    assert job.result["intact"] is False and "尾部被截断" in job.result["reason"]
    page = client_for(users["auditor"]).get("/audit/").content.decode()
    assert f"第 {job.result['broken_seq']} 行断裂" in page


def test_csv_export_seals(users, client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(users["auditor"]).get("/audit/export.csv")
        b"".join(response.streaming_content)
    assert latest() is not None and latest().seq == head_values()[0]


def test_auditor_exports_seals_on_every_path(users, client_for, token_for, cli_login, tmp_path):
    add(2)
    seal()
    body = seal_path().read_bytes()
    client = client_for(users["auditor"])
    page = client.get("/audit/").content.decode()
    assert "导出封存点" in page and "最近封存：第" in page
    response = client.get("/audit/seals.jsonl")
    assert response.status_code == 200 and response.content == body
    assert response["Content-Disposition"].startswith('attachment; filename="audit-seals-')
    api = client.get("/api/audit/seals", **token_for(users["auditor"]))
    assert api.status_code == 200 and api.content == body
    cli_login(users["auditor"])
    out = tmp_path / "seals.jsonl"
    call_command("audit", "seals", "--actor", "t_auditor", "-o", str(out), stdout=StringIO())
    assert out.read_bytes() == body and load(out)[0].seq == latest().seq
    stdout = StringIO()
    cli_login(users["auditor"])
    call_command("audit", "seals", "--actor", "t_auditor", stdout=stdout)
    assert stdout.getvalue().encode() == body
    exports = AuditEvent.objects.filter(
        action=AuditAction.EXPORT, object_type="audit.seal", actor="t_auditor"
    )
    assert exports.count() == 4 and {e.source for e in exports} == {"web", "api", "cli"}
    assert exports.first().detail["rows"] == 1


@pytest.mark.parametrize("role", ["sysadmin", "secadmin", "pm"])
def test_others_cannot_export_seals(users, client_for, token_for, cli_login, role):
    user = users[role]
    client = client_for(user)
    assert client.get("/audit/seals.jsonl").status_code == 403
    assert client.get("/api/audit/seals", **token_for(user)).status_code == 403
    cli_login(user)
    with pytest.raises(CommandError, match="无权限"):
        call_command("audit", "seals", "--actor", user.username, stdout=StringIO())
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT, object_type="audit.seal").exists()
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor=user.username).exists()


def test_csv_export_does_not_write_formulas(users, client_for, cli_login, tmp_path):
    from caiwei.audit.log import record

    record(
        AuditAction.ADMIN,
        object_type="test",
        object_repr='=HYPERLINK("http://x","点我")',
        object_id="@SUM(1)",
    )
    record(AuditAction.ADMIN, object_type="test", object_repr="+86 138", object_id="-1", actor_name="\tx")
    body = b"".join(client_for(users["auditor"]).get("/audit/export.csv").streaming_content).decode(
        "utf-8-sig"
    )
    assert """'=HYPERLINK(""http://x"",""点我"")""" in body and "'@SUM(1)" in body
    assert "'+86 138" in body and ",'-1," in body and "'\tx" in body
    assert '"=HYPERLINK' not in body and ",=HYPERLINK" not in body
    cli_login(users["auditor"])
    out = tmp_path / "audit.csv"
    call_command("audit", "export", "--actor", "t_auditor", "-o", str(out), stdout=StringIO())
    assert "'=HYPERLINK" in out.read_text(encoding="utf-8-sig")
