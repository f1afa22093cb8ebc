"""The reconciliation API (/api/recon/…): a run on the sandbox's bank files and on uploaded files (multipart), the
run with its counts, sources and breaks by class; breaks filtered; owner, comment, ticket (linked or opened) and
resolve with a required reason; formats listed, a new version saved (an invalid definition refused with nothing
written) and previewed. The same permissions as the pages: another region's run or break answers 404, a bank
user sees only their bank's breaks (another bank's: 404) and cannot run or resolve (403)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from caiwei.recon.models import BankFormat, ReconBreak, ReconRun

from .conftest import LEAGUE, PERIOD, set_bank
from .test_views import csv_file

pytestmark = pytest.mark.django_db


def post_json(client, url, body, method="post"):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def start(client, recon, **extra):
    return client.post(
        "/api/recon/runs",
        {"region": LEAGUE, "database": recon["database"].pk, **PERIOD, **extra},
    )


def test_runs_and_breaks_over_the_api(recon, client_for):
    people = recon["people"]
    client = client_for(people["finance"])
    response = start(client, recon, sandbox="true", date_window=1, transit_days=10)
    assert response.status_code == 201, response.content.decode()
    run = response.json()
    assert run["status"] == "done" and run["matched_by_key"] > 0 and run["job"]
    assert run["sources"]["refused"] == [] and len(run["sources"]["files"]) >= 4
    kinds = {c["kind"]: c for c in run["breaks_by_class"]}
    assert {"amount", "bank_only", "book_only"} <= set(kinds)
    assert kinds["amount"]["reason"] == "金额不符：银行金额与凭证金额不一致"
    assert client.get(f"/api/recon/runs/{run['id']}").json()["id"] == run["id"]
    assert run["id"] in [r["id"] for r in client.get("/api/recon/runs").json()]
    # Filters.
    listed = client.get("/api/recon/breaks?state=open").json()
    assert len(listed) == ReconBreak.objects.filter(state="open").count()
    amount = client.get("/api/recon/breaks?kind=amount").json()
    assert amount and {b["kind"] for b in amount} == {"amount"} and amount[0]["age_days"] == 0
    brk = amount[0]
    assert [b["id"] for b in client.get(f"/api/recon/breaks?bank={brk['bank_code']}&kind=amount").json()] == [
        brk["id"]
    ]
    assert client.get("/api/recon/breaks?min_age=3").json() == []
    assert client.get("/api/recon/breaks?state=nonsense").status_code == 400
    url = f"/api/recon/breaks/{brk['id']}"
    # Owner, comment, ticket, resolve.
    assert post_json(client, url, {"owner": "r_county"}, "patch").status_code == 400
    response = post_json(client, url, {"owner": "r_engineer"}, "patch")
    assert response.status_code == 200 and response.json()["owner"] == "r_engineer"
    assert post_json(client, f"{url}/comments", {"text": "  "}).status_code == 400
    assert post_json(client, f"{url}/comments", {"text": "已联系银行"}).status_code == 201
    assert [c["text"] for c in client.get(url).json()["comments"]] == ["已联系银行"]
    assert post_json(client, f"{url}/ticket", {}).status_code == 400
    assert post_json(client, f"{url}/ticket", {"number": "NOPE"}).status_code == 400
    response = post_json(client, f"{url}/ticket", {"create": True, "severity": "紧急"})
    assert response.status_code == 200 and response.json()["ticket"]
    number = response.json()["ticket"]
    other = ReconBreak.objects.filter(state="open").exclude(pk=brk["id"]).first()
    response = post_json(client, f"/api/recon/breaks/{other.pk}/ticket", {"number": number})
    assert response.status_code == 200 and response.json()["ticket"] == number
    response = post_json(client, f"{url}/resolve", {"reason": " "})
    assert response.status_code == 400 and "请填写处理说明" in response.json()["detail"]
    assert post_json(client, f"{url}/resolve", {}).status_code == 400
    assert ReconBreak.objects.get(pk=brk["id"]).state == "open"
    response = post_json(client, f"{url}/resolve", {"reason": "银行已更正金额"})
    assert response.status_code == 200
    assert response.json()["state"] == "resolved" and response.json()["resolution"] == "银行已更正金额"
    assert post_json(client, f"{url}/resolve", {"reason": "再次"}).status_code == 400
    # Another region: 404 on the run and the break; an empty list.
    county = client_for(people["county"])
    assert county.get(f"/api/recon/runs/{run['id']}").status_code == 404
    assert county.get(url).status_code == 404
    assert post_json(county, f"{url}/comments", {"text": "x"}).status_code == 404
    assert county.get("/api/recon/breaks").json() == [] and county.get("/api/recon/runs").json() == []
    # A bank user: their bank's breaks only; another bank's is 404; no run, no resolve, no owner.
    bank = client_for(set_bank(people["bank"], brk["bank_code"]))
    assert {b["bank_code"] for b in bank.get("/api/recon/breaks").json()} == {brk["bank_code"]}
    assert bank.get(url).status_code == 200
    assert post_json(bank, f"{url}/comments", {"text": "本行已核实"}).status_code == 201
    assert start(bank, recon, sandbox="true").status_code == 403
    assert post_json(bank, f"{url}/resolve", {"reason": "x"}).status_code == 403
    assert post_json(bank, url, {"owner": None}, "patch").status_code == 403
    assert "matched_by_key" not in bank.get(f"/api/recon/runs/{run['id']}").json()
    elsewhere = ReconBreak.objects.exclude(bank_code=brk["bank_code"]).first()
    assert bank.get(f"/api/recon/breaks/{elsewhere.pk}").status_code == 404
    stranger = client_for(set_bank(people["other_bank"], elsewhere.bank_code))
    assert stranger.get(url).status_code == 404
    assert post_json(stranger, f"{url}/comments", {"text": "x"}).status_code == 404
    # A unit user has no reconciliation at all.
    assert client_for(people["unit"]).get("/api/recon/breaks").status_code == 403


def test_uploaded_files_over_the_api(recon, client_for):
    client = client_for(recon["people"]["finance"])
    path, bank = csv_file(recon)
    bad = "交易日期,支付凭证号,银行流水号,付款账号,付款户名,收款账号,收款户名,金额,用途,区划代码,交易状态,退票原因\n"
    bad += "20260105,PV1,SN1,1,甲,2,乙,十元,用途,152500000,成功,\n"
    bad = bad.encode("gbk")
    response = start(
        client,
        recon,
        files=[SimpleUploadedFile(path.name, path.read_bytes()), SimpleUploadedFile("坏.csv", bad)],
        formats=["csv-gbk", "csv-gbk"],
        banks=[bank, bank],
    )
    assert response.status_code == 201, response.content.decode()
    run = response.json()
    assert run["status"] == "done"
    refused = run["sources"]["refused"]
    assert len(refused) == 1 and refused[0]["line"] == 2 and refused[0]["field"] == "金额"
    assert refused[0]["offset"] is not None and refused[0]["file"] == "坏.csv"
    assert {b.bank_code for b in ReconBreak.objects.filter(last_run_id=run["id"])} <= {bank}
    # Mismatched lists and unknown formats are refused before anything is stored.
    count = ReconRun.objects.count()
    response = start(client, recon, files=[SimpleUploadedFile("a.csv", b"x")], formats=[])
    assert response.status_code == 400 and "格式编号" in response.json()["detail"]
    response = start(client, recon, files=[SimpleUploadedFile("a.csv", b"x")], formats=["nope"])
    assert response.status_code == 400 and "nope" in response.json()["detail"]
    assert start(client, recon).status_code == 400  # neither files nor the sandbox
    response = start(client, recon, sandbox="true", date_window=99)
    assert response.status_code == 400 and "date_window" in response.json()["detail"]
    assert ReconRun.objects.count() == count
    assert client.post(
        "/api/recon/runs",
        {"region": "152502000", "database": recon["database"].pk, **PERIOD, "sandbox": "true"},
    ).status_code in (400, 404)


def test_formats_over_the_api(recon, client_for):
    client = client_for(recon["people"]["engineer"])
    formats = client.get("/api/recon/formats").json()
    assert {f["code"] for f in formats} >= {"csv-gbk", "excel", "fixed-gbk", "xml-gbk"}
    fmt = BankFormat.objects.get(code="csv-gbk")
    url = f"/api/recon/formats/{fmt.pk}"
    assert client.get(url).json()["definition"] == fmt.definition
    response = post_json(client, url, {"definition": "layout: [未闭合"}, "put")
    assert response.status_code == 400 and "格式定义不是合法的 YAML" in response.json()["detail"]
    response = post_json(client, url, {"definition": fmt.definition.replace("  amount: 金额\n", "")}, "put")
    assert response.status_code == 400 and "金额" in response.json()["detail"]
    fmt.refresh_from_db()
    assert fmt.version == 1
    response = post_json(client, url, {"definition": fmt.definition, "bank_code": "B103"}, "put")
    assert (
        response.status_code == 200
        and response.json()["version"] == 2
        and response.json()["bank_code"] == "B103"
    )
    path, _ = csv_file(recon)
    response = client.post(f"{url}/preview", {"file": SimpleUploadedFile(path.name, path.read_bytes())})
    assert response.status_code == 200, response.content.decode()
    out = response.json()
    assert (
        out["rows"] and "error" not in out and out["headers"][0] == {"field": "pay_date", "label": "交易日期"}
    )
    bad = path.read_bytes().split(b"\n")
    bad[1] = bad[1].replace(b",", b",x", 1)  # the 支付凭证号 stays text; the date of line 2 is fine; …
    bad[1] = b"2026-99-99" + bad[1][8:]
    response = client.post(f"{url}/preview", {"file": SimpleUploadedFile("坏.csv", b"\n".join(bad))})
    error = response.json()["error"]
    assert error["line"] == 2 and error["field"] == "交易日期" and error["file"] == "坏.csv"
    response = client.post(
        f"{url}/preview", {"file": SimpleUploadedFile("a.csv", b"x"), "definition": "x: ["}
    )
    assert "格式定义有误" in response.json()["definition_error"]
    assert client_for(recon["people"]["finance"]).get("/api/recon/formats").status_code == 403
