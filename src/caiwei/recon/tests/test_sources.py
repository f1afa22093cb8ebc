"""银行文件来源 on the page and over the API: a 项目经理 or engineer sets up a source of their region — the password and
private key write-only (sealed, never shown back, never in the audit), bad settings refused in Chinese on the field
with nothing saved — and 立即拉取 starts the source's recon.pull job, whose files are recorded as taken."""

from __future__ import annotations

import getpass
import json
import re
import shutil

import pytest

from caiwei.audit.models import AuditEvent
from caiwei.jobs.models import Job, JobStatus
from caiwei.recon.models import BankFileIntake, BankFileSource, BankFormat
from caiwei.recon.sources import SANDBOX_LAYOUTS

from . import test_intake
from .test_intake import BANKS, expected, write_bank

sshd = test_intake.sshd  # the real OpenSSH server on loopback (a fixture)

pytestmark = pytest.mark.django_db

PASSWORD = "Pw-银行-0123456789!"  # noqa: S105 (a test credential)
FINGERPRINT = "SHA256:" + "A" * 43


@pytest.fixture
def places(recon, settings, tmp_path):
    settings.CAIWEI_RECON_WATCH_DIR = str(tmp_path / "watch")
    settings.CAIWEI_RECON_INBOX_DIR = str(tmp_path / "inbox")
    (tmp_path / "watch" / "b101").mkdir(parents=True)
    return tmp_path


def fmt_for(bank: str) -> BankFormat:
    return BankFormat.objects.get(code=SANDBOX_LAYOUTS[BANKS[bank]])


def sftp_form(recon, **over) -> dict:
    data = {
        "region": recon["region"].pk,
        "name": "B101 行 SFTP",
        "bank_code": "B101",
        "bank_format": fmt_for("B101").pk,
        "kind": "sftp",
        "host": "sftp.bank.example",
        "port": 22,
        "username": "caiwei",
        "password": PASSWORD,
        "private_key": "",
        "host_key": FINGERPRINT,
        "directory": "/outgoing",
        "pattern": "*_支付清单_*.csv",
        "interval_minutes": 30,
        "business_days_only": "on",
        "enabled": "on",
        "action": "save",
    }
    return data | over


def api_body(recon, **over) -> dict:
    body = {
        "region": recon["region"].code,
        "name": "B101 行 SFTP",
        "bank_code": "B101",
        "bank_format": fmt_for("B101").code,
        "kind": "sftp",
        "host": "sftp.bank.example",
        "port": 22,
        "username": "caiwei",
        "password": PASSWORD,
        "host_key": FINGERPRINT,
        "directory": "/outgoing",
        "pattern": "*.csv",
        "interval_minutes": 30,
    }
    return body | over


def send(client, method, url, body):
    return client.generic(method, url, json.dumps(body), content_type="application/json")


def audit_text(source: BankFileSource) -> str:
    events = AuditEvent.objects.filter(object_type="recon.bankfilesource", object_id=str(source.pk))
    assert events.exists()
    return json.dumps([[e.before, e.after, e.detail] for e in events], ensure_ascii=False)


def test_create_and_edit_on_the_page_keeps_the_password_write_only(recon, places, client_for):
    client = client_for(recon["people"]["pm"])
    response = client.post("/recon/sources/new/", sftp_form(recon))
    assert response.status_code == 302, response.content.decode()[:3000]
    source = BankFileSource.objects.get()
    assert response["Location"] == f"/recon/sources/{source.pk}/"
    assert source.unsealed_password() == PASSWORD and source.host_key == FINGERPRINT
    for page in (client.get(f"/recon/sources/{source.pk}/"), client.get("/recon/sources/")):
        html = page.content.decode()
        assert page.status_code == 200 and source.name in html
        assert PASSWORD not in html and source.secret not in html
    assert PASSWORD not in audit_text(source) and source.secret not in audit_text(source)
    # saved again with the password left empty: the sealed one is kept
    response = client.post(f"/recon/sources/{source.pk}/", sftp_form(recon, password="", interval_minutes=45))
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.interval_minutes == 45 and source.unsealed_password() == PASSWORD
    # another host with no new password: the stored one was sealed for the old host, asked again, nothing saved
    response = client.post(
        f"/recon/sources/{source.pk}/", sftp_form(recon, password="", host="other.example")
    )
    assert response.status_code == 200 and "请重新输入密码或私钥" in response.content.decode()
    source.refresh_from_db()
    assert source.host == "sftp.bank.example"


def test_create_and_edit_over_the_api_never_returns_the_secret(recon, places, client_for):
    client = client_for(recon["people"]["engineer"])
    response = send(client, "POST", "/api/recon/sources", api_body(recon))
    assert response.status_code == 201, response.content.decode()
    out = response.json()
    source = BankFileSource.objects.get(pk=out["id"])
    assert out["has_password"] is True and "password" not in out and "secret" not in out
    for text in (
        response.content.decode(),
        client.get(f"/api/recon/sources/{source.pk}").content.decode(),
        client.get("/api/recon/sources").content.decode(),
    ):
        assert PASSWORD not in text and source.secret not in text
    response = send(
        client, "PUT", f"/api/recon/sources/{source.pk}", api_body(recon, password="", pattern="*.txt")
    )
    assert response.status_code == 200, response.content.decode()
    source.refresh_from_db()
    assert source.pattern == "*.txt" and source.unsealed_password() == PASSWORD
    assert PASSWORD not in audit_text(source) and source.secret not in audit_text(source)


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"pattern": "in/*.csv"}, "pattern", "文件名模式"),
        ({"host_key": ""}, "host_key", "主机密钥指纹"),
        ({"kind": "folder", "directory": "/etc", "host": "", "username": ""}, "directory", "监视目录须在"),
    ],
)
def test_bad_settings_are_refused_in_chinese_and_nothing_is_saved(
    recon, places, client_for, over, field, words
):
    client = client_for(recon["people"]["pm"])
    response = client.post("/recon/sources/new/", sftp_form(recon, **over))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-error="{field}"' in html and words in html
    response = send(client, "POST", "/api/recon/sources", api_body(recon, **over))
    assert response.status_code == 400 and words in json.dumps(response.json(), ensure_ascii=False)
    assert not BankFileSource.objects.exists()


def test_other_region_and_other_roles_are_refused(recon, places, client_for):
    source = BankFileSource(
        region=recon["region"],
        name="盟本级来源",
        bank_code="B101",
        bank_format=fmt_for("B101"),
        kind=BankFileSource.Kind.FOLDER,
        directory="b101",
    )
    source.full_clean()
    source.save()
    people = recon["people"]
    county = client_for(people["county"])  # an engineer of a county: RECON_FORMATS, but not the league
    for method, url in (
        ("GET", f"/recon/sources/{source.pk}/"),
        ("POST", f"/recon/sources/{source.pk}/"),
        ("POST", f"/recon/sources/{source.pk}/pull/"),
        ("GET", f"/api/recon/sources/{source.pk}"),
        ("PUT", f"/api/recon/sources/{source.pk}"),
        ("POST", f"/api/recon/sources/{source.pk}/pull"),
    ):
        assert send(county, method, url, api_body(recon)).status_code == 404, url
    assert "盟本级来源" not in county.get("/recon/sources/").content.decode()
    assert county.get("/api/recon/sources").json() == []
    # nor set one up in a region that is not theirs
    assert send(county, "POST", "/api/recon/sources", api_body(recon)).status_code == 400
    assert county.post("/recon/sources/new/", sftp_form(recon)).status_code == 200
    for role in ("finance", "bank", "unit", "approver"):
        client = client_for(people[role])
        for method, url in (
            ("GET", "/recon/sources/"),
            ("GET", "/recon/sources/new/"),
            ("GET", f"/recon/sources/{source.pk}/"),
            ("POST", f"/recon/sources/{source.pk}/pull/"),
            ("GET", "/api/recon/sources"),
            ("POST", "/api/recon/sources"),
            ("POST", f"/api/recon/sources/{source.pk}/pull"),
        ):
            assert send(client, method, url, api_body(recon)).status_code == 403, (role, url)
    assert list(BankFileSource.objects.values_list("pk", flat=True)) == [source.pk]
    assert not Job.objects.exists()


def test_pull_now_takes_the_files_of_a_watched_folder(recon, places, client_for):
    drop = places / "watch" / "b101"
    files = write_bank(places / "made", "B101")
    for path in files:
        shutil.copy2(path, drop / path.name)
    client = client_for(recon["people"]["pm"])
    response = client.post(
        "/recon/sources/new/",
        sftp_form(recon, kind="folder", directory="b101", host="", username="", password="", pattern="*"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    source = BankFileSource.objects.get()
    response = client.post(f"/recon/sources/{source.pk}/pull/")
    assert response.status_code == 302
    job = Job.objects.get(kind="recon.pull")
    assert job.status == JobStatus.SUCCEEDED and job.params == {"source": source.pk}
    taken = BankFileIntake.objects.filter(source=source)
    assert sorted(taken.values_list("name", flat=True)) == sorted(p.name for p in files)
    for path in files:
        row = taken.get(name=path.name)
        assert row.state == BankFileIntake.State.ACCEPTED
        assert (row.lines, row.amount) == expected(path)
    html = client.get(f"/recon/sources/{source.pk}/").content.decode()
    assert all(p.name in html for p in files)
    source.refresh_from_db()
    assert source.last_ok is True
    # a refused file shows its line and field; over the API the pull answers with the job's result
    bad = drop / files[0].name.replace(".", "_bad.", 1)
    bad.write_bytes(files[0].read_bytes().replace(b",", b";", 3))
    shutil.copystat(files[0], bad)
    out = client.post(f"/api/recon/sources/{source.pk}/pull").json()
    assert out["status"] == JobStatus.SUCCEEDED
    [refused] = out["result"]["refused"]
    row = BankFileIntake.objects.get(name=bad.name)
    assert row.state == BankFileIntake.State.REFUSED and refused["name"] == bad.name
    html = client.get("/recon/sources/").content.decode()
    assert f'data-intake="{row.pk}" data-state="refused"' in html and row.error["field"] in html


def test_the_server_fingerprint_is_read_for_the_operator_never_pinned_by_itself(
    recon, places, client_for, sshd
):
    client = client_for(recon["people"]["engineer"])
    form = sftp_form(
        recon,
        host="127.0.0.1",
        port=sshd.port,
        username=getpass.getuser(),
        password="",
        private_key=sshd.client_key.read_text(),
        host_key="",
        directory=str(sshd.folder),
    )
    response = client.post("/recon/sources/new/", form | {"action": "scan"})
    assert response.status_code == 200
    html = response.content.decode()
    shown = re.search(r"<code data-fingerprint>([^<]+)</code>", html).group(1)
    assert shown == sshd.fingerprint  # as OpenSSH's ssh-keygen -lf prints it
    assert not BankFileSource.objects.exists()
    assert sshd.client_key.read_text().strip() not in html  # the key typed is not echoed back either
    # saved without putting it in the field: refused, nothing pinned
    response = client.post("/recon/sources/new/", form)
    assert response.status_code == 200 and 'data-error="host_key"' in response.content.decode()
    assert not BankFileSource.objects.exists()
    response = client.post("/recon/sources/new/", form | {"host_key": shown})
    assert response.status_code == 302, response.content.decode()[:3000]
    source = BankFileSource.objects.get()
    assert source.host_key == sshd.fingerprint and source.key_secret
    assert sshd.client_key.read_text().strip() not in audit_text(source)


def test_a_pull_that_takes_new_files_reconciles_the_month_so_far(recon, places, client_for):
    """Scheduled reconciliation: a source with a finance database reconciles the month so far after each pull
    that took new files, with every file it took this month; a pull that takes nothing starts no run."""
    from caiwei.recon.models import ReconRun

    drop = places / "watch" / "b101"
    files = write_bank(places / "made", "B101")
    for path in files:
        shutil.copy2(path, drop / path.name)
    client = client_for(recon["people"]["pm"])
    form = sftp_form(recon, kind="folder", directory="b101", host="", username="", password="", pattern="*")
    response = client.post("/recon/sources/new/", form | {"reconcile_database": recon["database"].pk})
    assert response.status_code == 302, response.content.decode()[:3000]
    source = BankFileSource.objects.get()
    assert source.reconcile_database == recon["database"]

    out = client.post(f"/api/recon/sources/{source.pk}/pull").json()
    assert out["status"] == JobStatus.SUCCEEDED, out
    run = ReconRun.objects.get(pk=out["result"]["reconciliation"])
    today = run.as_of
    assert run.status == ReconRun.Status.DONE and run.created_by is None
    assert (run.period_start, run.period_end) == (today.replace(day=1), today)
    assert run.sources["files"] == len(files) and run.sources["refused"] == []
    assert run.sources["lines"] == sum(expected(p)[0] for p in files)
    # nothing new at the next pull: no second run
    out = client.post(f"/api/recon/sources/{source.pk}/pull").json()
    assert "reconciliation" not in out["result"] and ReconRun.objects.count() == 1
    # a finance database of another region is refused on the field, over the API too
    other = client.put(
        f"/api/recon/sources/{source.pk}",
        json.dumps({**api_body(recon), "reconcile_database": 987654321}),
        content_type="application/json",
    )
    assert other.status_code == 400 and "财政数据库 987654321 不存在" in json.dumps(
        other.json(), ensure_ascii=False
    )
