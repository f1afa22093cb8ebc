"""Bank file intake (issue 12): files pulled over SFTP from a real OpenSSH server on loopback (Debian's sshd, started
and stopped here with its own host key and an authorized key for the current user), from a watched folder, or
uploaded, are taken whole or refused whole with the file, line, byte offset and field; the same file is never taken
twice; an unknown or changed host key is refused before logging in; unsafe names are never fetched; a server that is
down leaves a clear Chinese reason on the source and a WARNING."""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import posixpath
import random
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import duckdb
import paramiko
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from caiwei.bizcalendar.engine import is_business_day
from caiwei.bizcalendar.services import get_calendar
from caiwei.jobs.models import Job
from caiwei.recon import formats, intake
from caiwei.recon.engine import create_inputs
from caiwei.recon.models import BankFileIntake, BankFileSource, BankFormat
from caiwei.recon.sources import SANDBOX_LAYOUTS, load_bank_files
from caiwei.sandbox.bankfiles import BankLine, read_bank_file, write_bank_files

SSHD = "/usr/sbin/sshd"
REGION = "152500000"
# One agent bank per layout the sandbox's banks write, with the shipped definition of each.
BANKS = {"B101": "csv_gbk", "B102": "xlsx", "B103": "fixed_width", "B104": "xml_gbk"}
Accepted, Refused, Duplicate = (
    BankFileIntake.State.ACCEPTED,
    BankFileIntake.State.REFUSED,
    BankFileIntake.State.DUPLICATE,
)


# --- a real OpenSSH server on loopback ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True
    )


def openssh_fingerprint(public_key: Path) -> str:
    """The fingerprint as OpenSSH itself prints it (``ssh-keygen -lf``), not as our code computes it."""
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


class Sshd:
    """sshd -D -e -f <config> on 127.0.0.1:<free port>, public-key login for the current user, internal-sftp."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.host_key = folder / "host_key"
        self.client_key = folder / "client_key"
        keygen(self.host_key)
        keygen(self.client_key)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        self.log = folder / "sshd.log"
        self.config = folder / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        self.proc = None

    @property
    def fingerprint(self) -> str:
        return openssh_fingerprint(self.folder / "host_key.pub")

    def start(self) -> Sshd:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4) == b"SSH-":
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def logins(self) -> int:
        return self.log.read_text(errors="replace").count("Accepted publickey")


def need_sshd() -> None:
    if os.path.exists(SSHD) and shutil.which("ssh-keygen"):
        return
    message = "缺少 Debian 的 openssh-server（/usr/sbin/sshd）；scripts/install.sh --test 会安装它"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)  # in CI a missing server is a failure, never a skip
    pytest.skip(message)


@pytest.fixture(scope="module")
def sshd():
    need_sshd()
    folder = Path(tempfile.mkdtemp(prefix="caiwei-sshd-"))
    server = Sshd(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


# --- the platform side ----------------------------------------------------------------------------------------------


@pytest.fixture
def places(settings, tmp_path):
    settings.CAIWEI_RECON_INBOX_DIR = str(tmp_path / "inbox")
    settings.CAIWEI_RECON_WATCH_DIR = str(tmp_path / "watch")
    return SimpleNamespace(inbox=tmp_path / "inbox", watch=tmp_path / "watch", tmp=tmp_path)


@pytest.fixture
def bank_formats(db):
    """The shipped definitions as the platform's bank formats, one per sandbox layout."""
    out = {}
    for fmt, stem in SANDBOX_LAYOUTS.items():
        out[fmt], _ = BankFormat.objects.update_or_create(  # shipped by a data migration; made sure of here
            code=stem,
            defaults={
                "name": stem,
                "definition": (formats.LAYOUT_DIR / f"{stem}.yaml").read_text(encoding="utf-8"),
            },
        )
    return out


def bank_lines(bank: str, seed: int, days: int = 3, per_day: int = 4) -> list[BankLine]:
    rng = random.Random(seed)
    out = []
    for d in range(days):
        for i in range(per_day):
            n = d * per_day + i
            out.append(
                BankLine(
                    bank_code=bank,
                    pay_cert_no=f"PV{seed:03d}{n:07d}",
                    agent_business_no=f"{bank}2026{n:010d}",
                    pay_date=date(2026, 7, 13) + timedelta(days=d),
                    amount=Decimal(rng.randint(1, 10_000_000)) / 100,
                    payer_acct_no=f"6228{rng.randint(10**11, 10**12 - 1)}",
                    payer_acct_name="包头市财政局国库支付中心",
                    payee_acct_no=f"6217{rng.randint(10**11, 10**12 - 1)}",
                    payee_acct_name=rng.choice(["内蒙古草原牧业有限公司", "鄂尔多斯市第一中学", "张三"]),
                    mof_div_code=REGION,
                    summary=rng.choice(["办公用品采购", "差旅费", "工程款（第二期）"]),
                )
            )
    return out


def write_bank(folder: Path, bank: str, seed: int = 1, **kw) -> list[Path]:
    """The bank's daily lists and monthly statement, as the sandbox's banks write them, quiet for an hour."""
    paths = write_bank_files(folder, bank, f"银行{bank}", BANKS[bank], bank_lines(bank, seed, **kw), 2026)
    for path in paths:
        age(path)
    return paths


def age(path: Path, seconds: int = 3600) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def sftp_source(
    sshd, regions, bank_formats, remote: Path, bank: str = "B101", port: int | None = None, **kw
) -> BankFileSource:
    source = BankFileSource(
        region=regions[REGION],
        name=f"{bank} SFTP",
        bank_code=bank,
        bank_format=bank_formats[BANKS[bank]],
        kind=BankFileSource.Kind.SFTP,
        host="127.0.0.1",
        port=port or sshd.port,
        username=getpass.getuser(),
        directory=str(remote),
        host_key=sshd.fingerprint,
        **kw,
    )
    source.set_private_key(sshd.client_key.read_text())
    source.full_clean()
    source.save()
    return source


def expected(path: Path) -> tuple[int, Decimal]:
    """Count and amount by the sandbox's own hand-written reader (an implementation independent of formats.py)."""
    _, lines = read_bank_file(path)
    return len(lines), sum((line.amount for line in lines), Decimal(0))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_partial_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.startswith(".part-") or p.name.endswith(".part")]


# --- SFTP ---------------------------------------------------------------------------------------------------------


def test_sftp_pull_takes_each_layout_whole(sshd, regions, bank_formats, places):
    for bank in BANKS:
        remote = places.tmp / "remote"
        files = write_bank(remote, bank, seed=int(bank[1:]))
        source = sftp_source(sshd, regions, bank_formats, remote / bank, bank)
        result = intake.pull(source)
        assert result.ok, result.message
        assert sorted(a["name"] for a in result.accepted) == sorted(p.name for p in files)
        assert result.refused == result.duplicates == []
        for path in files:
            row = BankFileIntake.objects.get(source=source, name=path.name)
            count, amount = expected(path)
            assert (row.state, row.lines, row.amount, row.size) == (
                Accepted,
                count,
                amount,
                path.stat().st_size,
            )
            stored = intake.stored_path(row)
            assert stored.parent == places.inbox / REGION / bank and stored.name == path.name
            assert row.sha256 == sha(stored) == sha(path)  # the bytes as they were on the server
            assert row.mtime == datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)
        source.refresh_from_db()
        assert (source.last_ok, source.failures) == (True, 0)
        assert source.last_message == result.text()
    assert no_partial_files(places.inbox)


def test_pattern_and_settle_time_choose_what_is_fetched(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    daily = [p for p in files if "支付清单" in p.name]
    source = sftp_source(sshd, regions, bank_formats, remote / "B101", pattern="B101_支付清单_*.csv")
    fresh = daily[-1]
    os.utime(fresh)  # just written: may still be growing
    result = intake.pull(source)
    assert sorted(a["name"] for a in result.accepted) == sorted(p.name for p in daily[:-1])
    assert [s["name"] for s in result.skipped] == [fresh.name]
    assert not BankFileIntake.objects.filter(name=fresh.name).exists()
    age(fresh)
    assert [a["name"] for a in intake.pull(source).accepted] == [fresh.name]
    # the monthly statements never matched the pattern
    assert not BankFileIntake.objects.filter(name__contains="对账单").exists()


def test_the_same_file_is_never_taken_twice(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    source = sftp_source(sshd, regions, bank_formats, remote / "B101")
    first = intake.pull(source)
    assert len(first.accepted) == len(files)
    rows = BankFileIntake.objects.count()
    again = intake.pull(source)
    assert again.ok and again.accepted == again.refused == again.duplicates == []
    assert BankFileIntake.objects.count() == rows
    # the same content again, under another name and with a new modification time: recorded as a duplicate
    copy = remote / "B101" / f"重发_{files[0].name}"
    shutil.copyfile(files[0], copy)
    age(copy, 60 * 5)
    age(files[0], 60 * 10)
    third = intake.pull(source)
    assert third.accepted == []
    assert sorted(d["name"] for d in third.duplicates) == sorted([copy.name, files[0].name])
    original = BankFileIntake.objects.get(name=files[0].name, state=Accepted)
    assert all(f"第 {original.pk} 号取件" in d["error"]["message"] for d in third.duplicates)
    assert BankFileIntake.objects.filter(sha256=sha(files[0]), state=Accepted).count() == 1
    assert intake.pull(source).duplicates == []  # and not again


def test_a_malformed_file_is_refused_whole_with_line_offset_and_field(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    bad = files[0]
    raw = bad.read_bytes()
    lines = raw.split(b"\r\n")
    cells = lines[2].split(b",")  # file line 3: the second record
    amount_column = lines[0].split(b",").index("金额".encode("gbk"))
    cells[amount_column] = b"12x.00"
    lines[2] = b",".join(cells)
    bad.write_bytes(b"\r\n".join(lines))
    age(bad)
    source = sftp_source(sshd, regions, bank_formats, remote / "B101")
    result = intake.pull(source)
    assert result.ok  # a refused file is not a failure of the source
    assert sorted(a["name"] for a in result.accepted) == sorted(p.name for p in files[1:])
    [refused] = result.refused
    error = refused["error"]
    assert (error["file"], error["line"], error["field"]) == (bad.name, 3, "金额")
    assert error["offset"] == len(lines[0]) + len(lines[1]) + 4  # where line 3 starts
    assert "12x.00" in error["problem"]
    row = BankFileIntake.objects.get(name=bad.name)
    assert (row.state, row.lines, row.amount) == (Refused, 0, 0)
    kept = intake.stored_path(row)
    assert kept.parent == places.inbox / REGION / "B101" / intake.QUARANTINE
    assert kept.read_bytes() == bad.read_bytes()
    assert json.loads(kept.with_name(kept.name + ".reason.json").read_text(encoding="utf-8")) == error
    assert not (places.inbox / REGION / "B101" / bad.name).exists()


def test_a_broken_character_in_a_fixed_width_field_names_its_byte(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B103")
    bad = files[0]
    lines = bad.read_bytes().split(b"\r\n")
    definition = formats.parse_definition(bank_formats["fixed_width"].definition)
    start, _width = definition.fields["payer_acct_name"]
    record = bytearray(lines[1])  # line 2: the first detail record after the header
    record[start] = 0xFF
    lines[1] = bytes(record)
    bad.write_bytes(b"\r\n".join(lines))
    age(bad)
    source = sftp_source(sshd, regions, bank_formats, remote / "B103", "B103", pattern="*_ZFQD_*")
    [refused] = intake.pull(source).refused
    error = refused["error"]
    assert (error["file"], error["line"], error["field"]) == (bad.name, 2, "付款户名")
    assert error["offset"] == len(lines[0]) + 2 + start


def test_an_unknown_or_changed_host_key_is_refused_before_logging_in(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    write_bank(remote, "B101")
    source = sftp_source(sshd, regions, bank_formats, remote / "B101")
    # the fingerprint we compute is the one OpenSSH prints
    assert intake.scan_host_key("127.0.0.1", sshd.port) == {
        "type": "ssh-ed25519",
        "fingerprint": sshd.fingerprint,
    }
    impostor = places.tmp / "impostor"
    keygen(impostor)
    logins = sshd.logins()
    source.host_key = openssh_fingerprint(impostor.with_name("impostor.pub"))
    source.save()
    result = intake.pull(source)
    assert not result.ok
    assert "主机密钥与登记的不符" in result.message
    assert source.host_key in result.message and sshd.fingerprint in result.message
    source.host_key = ""
    source.save()
    result = intake.pull(source)
    assert not result.ok and "未登记" in result.message and sshd.fingerprint in result.message
    assert sshd.logins() == logins  # no key was offered to the server
    assert not BankFileIntake.objects.exists()
    with pytest.raises(ValidationError) as raised:
        source.full_clean()
    assert "host_key" in raised.value.message_dict
    # a line of ssh-keygen -lf is accepted as the pinned fingerprint
    source.host_key = f"256 {sshd.fingerprint} bank@sftp (ED25519)"
    source.full_clean()
    assert source.host_key == sshd.fingerprint


def test_unsafe_remote_names_are_refused_and_never_fetched(sshd, regions, bank_formats, places, monkeypatch):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    folder = remote / "B101"
    good = files[0]
    for name in ("..evil.csv", "a\\..\\b.csv", "名\x1b[31m.csv"):
        shutil.copyfile(good, folder / name)
        age(folder / name)
    outside = places.tmp / "outside.csv"
    shutil.copyfile(good, outside)
    (folder / "link.csv").symlink_to(
        outside
    )  # a link out of the directory is not a regular file: not fetched
    real_listing = paramiko.SFTPClient.listdir_attr
    opened = []

    def hostile_listing(self, path="."):  # a server that names files outside the directory
        attrs = real_listing(self, path)
        template = next(a for a in attrs if a.filename == good.name)
        for name in ("../../escape.csv", "/etc/passwd", "sub/x.csv", "C:evil.csv"):
            fake = paramiko.SFTPAttributes.from_stat(os.stat(good), name)
            fake.st_mtime = template.st_mtime
            attrs.append(fake)
        return attrs

    real_open = paramiko.SFTPClient.open

    def recording_open(self, filename, *args, **kw):
        opened.append(filename)
        return real_open(self, filename, *args, **kw)

    monkeypatch.setattr(paramiko.SFTPClient, "listdir_attr", hostile_listing)
    monkeypatch.setattr(paramiko.SFTPClient, "open", recording_open)
    source = sftp_source(sshd, regions, bank_formats, folder)
    result = intake.pull(source)
    unsafe = {
        "..evil.csv",
        "a\\..\\b.csv",
        "名\x1b[31m.csv",
        "../../escape.csv",
        "/etc/passwd",
        "sub/x.csv",
        "C:evil.csv",
    }
    assert {r["name"] for r in result.refused} == unsafe
    assert all(r["sha256"] == "" and r["path"] == "" for r in result.refused)
    assert sorted(a["name"] for a in result.accepted) == sorted(p.name for p in files)
    assert sorted(opened) == sorted(posixpath.join(str(folder), p.name) for p in files)
    assert not BankFileIntake.objects.filter(name="link.csv").exists()
    stored = {p.relative_to(places.inbox) for p in places.inbox.rglob("*") if p.is_file()}
    assert stored == {Path(REGION, "B101", p.name) for p in files}
    # recorded once: a later pull does not refuse them again
    assert intake.pull(source).refused == []


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "a/b",
        "/abs.csv",
        "..\\x",
        "x..y",
        "D:\\x.csv",
        "a\nb",
        "a\x00b",
        "发票\u202ecsv.exe",
        "a" * 201,
    ],
)
def test_name_problem_refuses_every_unsafe_name(name):
    assert intake.name_problem(name)


@pytest.mark.parametrize("name", ["B101_支付清单_20260713.csv", "B103_ZFQD_20260713.txt", "a.b-c_d (1).xlsx"])
def test_name_problem_passes_plain_names(name):
    assert intake.name_problem(name) is None


def test_files_past_the_size_limit_are_refused_without_fetching(
    sshd, regions, bank_formats, places, settings
):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    small = min(p.stat().st_size for p in files)
    settings.CAIWEI_RECON_MAX_FILE_BYTES = small
    source = sftp_source(sshd, regions, bank_formats, remote / "B101")
    result = intake.pull(source)
    assert {a["name"] for a in result.accepted} == {p.name for p in files if p.stat().st_size <= small}
    assert {r["name"] for r in result.refused} == {p.name for p in files if p.stat().st_size > small}
    assert all("上限" in r["error"]["problem"] for r in result.refused)


def test_a_server_that_is_down_leaves_a_reason_and_a_warning(regions, bank_formats, places, caplog):
    need_sshd()
    folder = Path(tempfile.mkdtemp(prefix="caiwei-sshd-down-"))
    server = Sshd(folder).start()
    try:
        remote = places.tmp / "remote"
        write_bank(remote, "B101")
        source = sftp_source(server, regions, bank_formats, remote / "B101")
        assert intake.pull(source).ok
        server.stop()
        with caplog.at_level(logging.WARNING, logger="caiwei.recon.intake"):
            first = intake.pull(source)
            second = intake.pull(source)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    expected_message = f"连不上 SFTP 服务器 127.0.0.1:{server.port}：连接被拒绝"
    assert not first.ok and first.message.startswith(expected_message)
    source.refresh_from_db()
    assert (source.last_ok, source.failures) == (False, 2)
    assert source.last_message.startswith(expected_message)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and expected_message in warnings[-1].getMessage()
    assert "连续第 2 次" in warnings[-1].getMessage()
    assert second.message == first.message


def test_wrong_remote_directory_and_a_secret_for_another_connection(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    write_bank(remote, "B101")
    source = sftp_source(sshd, regions, bank_formats, remote / "nowhere")
    result = intake.pull(source)
    assert not result.ok and result.message == f"SFTP 服务器上没有远程目录“{remote / 'nowhere'}”"
    # the key is sealed, bound to host, port and user: it does not open for another user
    assert source.key_secret.startswith("sm4gcm:") and "PRIVATE KEY" not in source.key_secret
    source.directory = str(remote / "B101")
    source.username = "someone-else"
    source.save()
    result = intake.pull(source)
    assert not result.ok and "无法解密" in result.message


# --- schedule -----------------------------------------------------------------------------------------------------


def days(spec, start: date, business: bool) -> date:
    day = start
    while is_business_day(spec, day) != business:
        day += timedelta(days=1)
    return day


def test_the_tick_pulls_due_sources_on_business_days(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    source = sftp_source(sshd, regions, bank_formats, remote / "B101", interval_minutes=30)
    spec = get_calendar(intake.CALENDAR).spec()
    day_off = days(spec, date(2026, 3, 1), business=False)
    next_workday = days(spec, day_off, business=True)
    noon = timezone.make_aware(datetime.combine(day_off, datetime.min.time())) + timedelta(hours=12)
    assert intake.fire_due(noon) == []
    source.refresh_from_db()
    assert source.next_run_at == timezone.make_aware(datetime.combine(next_workday, datetime.min.time()))
    assert not Job.objects.filter(kind="recon.pull").exists()
    assert intake.fire_due(noon + timedelta(hours=1)) == []  # not due before then
    at = source.next_run_at + timedelta(hours=9)
    assert intake.fire_due(at) == [source.pk]
    job = Job.objects.get(kind="recon.pull")
    assert job.status == "succeeded" and job.region_id == source.region_id
    assert len(job.result["accepted"]) == len(files)
    source.refresh_from_db()
    assert source.next_run_at == at + timedelta(minutes=30)
    assert intake.fire_due(at + timedelta(minutes=29)) == []  # claimed: not started twice
    # a source pulled every day fires on a day off too; a disabled one never
    source.business_days_only = False
    source.save()
    assert intake.fire_due(at + timedelta(days=30)) == [source.pk]
    source.enabled = False
    source.save()
    assert intake.fire_due(at + timedelta(days=60)) == []


# --- watched folder -----------------------------------------------------------------------------------------------


def folder_source(regions, bank_formats, directory: str, bank: str = "B101") -> BankFileSource:
    source = BankFileSource(
        region=regions[REGION],
        name=f"{bank} 监视目录",
        bank_code=bank,
        bank_format=bank_formats[BANKS[bank]],
        kind=BankFileSource.Kind.FOLDER,
        directory=directory,
    )
    source.full_clean()
    source.save()
    return source


def test_a_watched_folder_moves_files_to_done_or_quarantine(regions, bank_formats, places):
    watch = places.watch / "b104"
    files = write_bank(places.tmp / "drop", "B104")
    watch.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, watch / path.name)
    bad = watch / files[-1].name
    bad.write_bytes(
        bad.read_bytes().replace(b"<AllAmt>", b"<AllAmt>9", 1)
    )  # the stated total no longer agrees
    age(bad)
    (watch / "link.xml").symlink_to(files[0])
    source = folder_source(regions, bank_formats, "b104", "B104")
    result = intake.pull(source)
    assert result.ok, result.message
    assert sorted(a["name"] for a in result.accepted) == sorted(p.name for p in files[:-1])
    [refused] = result.refused
    assert refused["name"] == bad.name
    assert (refused["error"]["file"], refused["error"]["field"]) == (bad.name, "合计金额")
    assert sorted(p.name for p in (watch / "done").iterdir()) == sorted(p.name for p in files[:-1])
    quarantined = watch / "quarantine" / bad.name
    assert quarantined.is_file()
    reason = json.loads((watch / "quarantine" / f"{bad.name}.reason.json").read_text(encoding="utf-8"))
    assert reason == refused["error"]
    assert sorted(p.name for p in watch.iterdir()) == ["done", "link.xml", "quarantine"]
    for path in files[:-1]:
        row = BankFileIntake.objects.get(name=path.name)
        assert (row.lines, row.amount) == expected(path)
        assert intake.stored_path(row).read_bytes() == path.read_bytes()
    # dropped again as it was (same name, size, time): set aside without another record
    rows = BankFileIntake.objects.count()
    shutil.copy2(files[0], watch / files[0].name)
    again = intake.pull(source)
    assert again.accepted == again.duplicates == [] and [s["name"] for s in again.skipped] == [files[0].name]
    assert BankFileIntake.objects.count() == rows
    # the same content under another name: recorded as a duplicate, set aside with its reason
    shutil.copy2(files[0], watch / f"重发_{files[0].name}")
    again = intake.pull(source)
    assert [d["name"] for d in again.duplicates] == [f"重发_{files[0].name}"]
    assert (watch / "quarantine" / f"重发_{files[0].name}.reason.json").is_file()
    assert sorted(p.name for p in watch.iterdir()) == ["done", "link.xml", "quarantine"]
    assert no_partial_files(places.tmp)


def test_a_watched_folder_must_lie_in_the_watch_root(regions, bank_formats, places):
    places.watch.mkdir(parents=True, exist_ok=True)
    (places.tmp / "elsewhere").mkdir()
    (places.watch / "escape").symlink_to(places.tmp / "elsewhere")
    for directory in (str(places.tmp / "elsewhere"), "../elsewhere", "escape", "/etc"):
        with pytest.raises(ValidationError) as raised:
            folder_source(regions, bank_formats, directory)
        assert "directory" in raised.value.message_dict
    # changed after it was saved: refused when pulled
    (places.watch / "ok").mkdir()
    source = folder_source(regions, bank_formats, "ok")
    source.directory = "/etc"
    source.save()
    result = intake.pull(source)
    assert not result.ok and "监视目录须在" in result.message
    assert not BankFileIntake.objects.exists()


# --- upload, command line, reconciliation -------------------------------------------------------------------------


def test_an_upload_is_taken_like_a_fetched_file(regions, bank_formats, places, users, settings):
    files = write_bank(places.tmp / "up", "B102")
    path = files[0]
    data = path.read_bytes()
    row = intake.accept_upload(
        region=regions[REGION],
        bank_code="B102",
        bank_format=bank_formats["xlsx"],
        name=path.name,
        chunks=[data[:1000], data[1000:]],
        user=users["engineer"],
    )
    assert (row.state, (row.lines, row.amount), row.uploaded_by) == (
        Accepted,
        expected(path),
        users["engineer"],
    )
    rows = BankFileIntake.objects.count()
    for name in ("../../x.xlsx", "/tmp/x.xlsx", "a\\b.xlsx"):
        with pytest.raises(intake.IntakeError):
            intake.accept_upload(
                region=regions[REGION],
                bank_code="B102",
                bank_format=bank_formats["xlsx"],
                name=name,
                chunks=[data],
            )
    settings.CAIWEI_RECON_MAX_FILE_BYTES = 100
    with pytest.raises(intake.IntakeError, match="上限"):
        intake.accept_upload(
            region=regions[REGION],
            bank_code="B102",
            bank_format=bank_formats["xlsx"],
            name="big.xlsx",
            chunks=[data],
        )
    assert BankFileIntake.objects.count() == rows
    assert no_partial_files(places.inbox)


def test_command_line_pull_as_json(sshd, regions, bank_formats, places):
    remote = places.tmp / "remote"
    files = write_bank(remote, "B101")
    good = sftp_source(sshd, regions, bank_formats, remote / "B101")
    down = sftp_source(sshd, regions, bank_formats, remote / "B101", port=free_port())
    out = StringIO()
    call_command("recon", "pull", "--json", stdout=out)
    data = json.loads(out.getvalue())
    by_id = {s["source"]: s for s in data["sources"]}
    assert sorted(a["name"] for a in by_id[good.pk]["accepted"]) == sorted(p.name for p in files)
    assert by_id[down.pk]["ok"] is False and "连接被拒绝" in by_id[down.pk]["message"]
    out = StringIO()
    call_command("recon", "pull", "--source", str(good.pk), "--json", stdout=out)
    [again] = json.loads(out.getvalue())["sources"]
    assert again["ok"] and again["accepted"] == []


def test_accepted_intakes_feed_a_reconciliation(sshd, regions, bank_formats, places, tmp_path):
    remote = places.tmp / "remote"
    total_lines, total_amount = 0, Decimal(0)
    for bank in ("B101", "B103"):
        files = [p for p in write_bank(remote, bank) if "支付清单" in p.name or "_ZFQD_" in p.name]
        for path in files:
            count, amount = expected(path)
            total_lines, total_amount = total_lines + count, total_amount + amount
        source = sftp_source(
            sshd,
            regions,
            bank_formats,
            remote / bank,
            bank,
            pattern="*支付清单*" if bank == "B101" else "*_ZFQD_*",
        )
        assert intake.pull(source).ok
    con = duckdb.connect()
    create_inputs(con)
    loaded = load_bank_files(con, intake.bank_files(BankFileIntake.objects.all()), tmp_path)
    assert (loaded.lines, loaded.amount, loaded.refused) == (total_lines, total_amount, [])
    assert con.execute("SELECT count(DISTINCT bank_code) FROM bank").fetchone()[0] == 2


def test_two_workers_taking_the_same_file_keep_one(regions, bank_formats, places):
    """The unique (source, name, size, time) decides a race: the loser keeps neither a row nor a file."""
    files = write_bank(places.tmp / "drop", "B101")
    places.watch.mkdir(parents=True)
    source = folder_source(regions, bank_formats, str(places.watch))
    origin = intake.Origin(source.region, "B101", source.bank_format, source)
    path = files[0]
    mtime = datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)

    def copy(sink):
        sink.write(path.read_bytes())

    first = intake.take(origin, origin.definition(), path.name, mtime, copy)
    second = intake.take(origin, origin.definition(), path.name, mtime, copy)
    assert first.state == Accepted and second is None
    assert BankFileIntake.objects.count() == 1
    kept = [p for p in places.inbox.rglob("*") if p.is_file()]
    assert kept == [intake.stored_path(first)]
