"""The sandbox from the page, the API and the CLI (with the job runner in immediate mode)."""

import json
from io import StringIO

import pytest
import sqlalchemy as sa
from django.core.management import call_command
from django.core.management.base import CommandError

from caiwei.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox_settings(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{tmp_path / 'sandbox.sqlite3'}"
    return tmp_path


def test_cli_generate_writes_database_and_manifest(sandbox_settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    out = StringIO()
    call_command(
        "sandbox",
        "generate",
        "--db",
        url,
        "--payments",
        "1200",
        "--seed",
        "4",
        "--faults",
        "duplicate_payment=1,dormant_account=1",
        "--manifest",
        str(tmp_path / "m.json"),
        stdout=out,
    )
    assert "已生成：1201 笔支付" in out.getvalue()  # the duplicate is an extra payment
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert sorted(f["type"] for f in manifest["faults"]) == ["dormant_account", "duplicate_payment"]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM pay_voucher")).scalar() == 1201
    engine.dispose()


def test_cli_rejects_bad_input_in_chinese(sandbox_settings, tmp_path):
    with pytest.raises(CommandError, match="未知的故障类型"):
        call_command(
            "sandbox", "generate", "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", "--faults", "nope=1"
        )
    with pytest.raises(CommandError, match="区划"):
        call_command(
            "sandbox", "generate", "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", "--regions", "1525"
        )


def test_page_generate_runs_a_job_and_shows_the_sandbox(sandbox_settings, users, client_for):
    client = client_for(users["pm"])
    assert "尚未载入演练库" in client.get("/sandbox/").content.decode()
    response = client.post(
        "/sandbox/generate/",
        {
            "regions": "152500000:2",
            "year": 2026,
            "payments": 800,
            "seed": 2,
            "faults": "indicator_overspent=1",
        },
    )
    job = Job.objects.get(kind="sandbox.generate")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.status == JobStatus.SUCCEEDED, job.error
    html = client.get("/sandbox/").content.decode()
    assert 'data-table="pay_voucher">800<' in html and "指标超支" in html
    manifest = b"".join(client.get("/sandbox/manifest.json").streaming_content)
    assert json.loads(manifest)["faults"][0]["type"] == "indicator_overspent"


def test_page_rejects_bad_form(sandbox_settings, users, client_for):
    client = client_for(users["pm"])
    response = client.post(
        "/sandbox/generate/",
        {"regions": "x", "year": 2026, "payments": 800, "seed": 1, "faults": ""},
        follow=True,
    )
    assert "区划参数" in response.content.decode()
    assert not Job.objects.exists()


def test_api_and_roles(sandbox_settings, users, client_for):
    pm = client_for(users["pm"])
    response = pm.post(
        "/api/sandbox/generate", json.dumps({"payments": 500, "faults": ""}), content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    info = pm.get("/api/sandbox").json()
    assert info["loaded"] and {c["table"]: c["rows"] for c in info["counts"]}["pay_voucher"] == 500
    bad = pm.post("/api/sandbox/generate", json.dumps({"payments": 5}), content_type="application/json")
    assert bad.status_code == 400 and "payments" in bad.json()["errors"]
    assert (
        client_for(users["agent"])
        .post("/api/sandbox/generate", "{}", content_type="application/json")
        .status_code
        == 403
    )
    assert client_for(users["unit"]).get("/sandbox/").status_code == 403
    assert client_for(users["sysadmin"]).get("/api/sandbox").status_code == 403


def test_cli_flow_sends_the_sandbox_vouchers(sandbox_settings, tmp_path):
    import uuid

    import pika

    url = f"sqlite:///{tmp_path / 'flow.sqlite3'}"
    call_command("sandbox", "generate", "--db", url, "--payments", "600", stdout=StringIO())
    prefix = f"caiwei.test.{uuid.uuid4().hex[:8]}"
    out = tmp_path / "flow.json"
    amqp = "amqp://guest:guest@127.0.0.1:5672/"
    call_command(
        "sandbox",
        "flow",
        "--amqp",
        amqp,
        "--db",
        url,
        "--prefix",
        prefix,
        "--limit",
        "300",
        "--faults",
        "gap=1,dead_letter=2",
        "--manifest",
        str(out),
        stdout=StringIO(),
    )
    result = json.loads(out.read_text())
    assert result["counts"] == {"gap": 1, "dead_letter": 2}
    vouchers = sum(q["published"] for name, q in result["queues"].items() if name.endswith(".voucher"))
    receipts = sum(q["published"] for name, q in result["queues"].items() if name.endswith(".receipt"))
    assert vouchers == 300 and receipts == 298
    connection = pika.BlockingConnection(pika.URLParameters(amqp))
    channel = connection.channel()
    for name in result["queues"]:
        channel.queue_delete(name)
    channel.exchange_delete(f"{prefix}.dlx")
    connection.close()
