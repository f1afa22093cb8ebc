"""The reconciliation pages: a run on the sandbox's bank files or on uploaded files (in the background job, done
at once in tests), its counts, sources and breaks by class; the breaks list and filters; a break's owner,
comments, ticket (linked or opened from it) and resolution with a required reason, all in the audit chain; a bank
user sees only their bank's breaks and cannot run or resolve; another region's objects answer 404; the bank file
formats: an invalid definition is refused with nothing written, each save a new version, and a preview names the
line and field of a malformed file."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from caiwei.audit.models import AuditEvent
from caiwei.desk import services as desk
from caiwei.recon.models import BankFormat, BreakComment, ReconBreak, ReconRun
from caiwei.recon.sources import sandbox_files

from .conftest import PERIOD, set_bank

pytestmark = pytest.mark.django_db


def start_sandbox_run(client, recon) -> ReconRun:
    response = client.post(
        "/recon/run/",
        {
            "region": recon["region"].pk,
            "database": recon["database"].pk,
            **PERIOD,
            "date_window": 1,
            "amount": "0.00",
            "transit_days": 10,
            "use_sandbox": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = ReconRun.objects.latest("pk")
    assert response["Location"] == f"/recon/runs/{run.pk}/"
    return run


def csv_file(recon) -> tuple:
    """A sandbox bank's CSV payment list and its bank."""
    var = recon["var"]
    url = f"sqlite:///{var / 'sandbox.sqlite3'}"
    from caiwei.recon.formats import shipped

    csv = shipped()["csv-gbk"]
    found = [(p, bank) for p, d, bank in sandbox_files(var / "sandbox-bank-files", url) if d == csv]
    return max(found, key=lambda f: f[0].stat().st_size)


def test_a_run_on_the_sandbox_shows_counts_sources_and_breaks_by_class(recon, client_for):
    people = recon["people"]
    client = client_for(people["finance"])
    assert "银行对账" in client.get("/").content.decode()  # the nav entry
    page = client.get("/recon/").content.decode()
    assert 'id="run-form"' in page and "使用演练库的银行文件" in page
    run = start_sandbox_run(client, recon)
    run.refresh_from_db()
    assert run.status == ReconRun.Status.DONE, run.message
    assert run.created_by == people["finance"] and run.database == recon["database"]
    assert run.sources["refused"] == [] and len(run.sources["inputs"]) >= 4 and run.sources["pboc"]
    page = client.get(f"/recon/runs/{run.pk}/").content.decode()
    assert 'data-count="matched_by_key">' in page and str(run.matched_by_key) in page
    for label in ("按业务号相符", "按金额账户日期相符", "分笔支付的凭证", "在途凭证", "相符的清算"):
        assert label in page
    kinds = set(ReconBreak.objects.filter(last_run=run).values_list("kind", flat=True))
    assert {"amount", "bank_only", "book_only"} <= kinds
    assert "金额不符：银行金额与凭证金额不一致" in page and "仅银行有：" in page
    assert all(b.bank_code for b in ReconBreak.objects.filter(last_run=run))
    # The htmx fragment the page polls while the run is queued or running.
    fragment = client.get(f"/recon/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="run-body"') and 'data-run-status="done"' in fragment
    # The runs list and the breaks list with its filters.
    assert f'data-run="{run.pk}"' in client.get("/recon/").content.decode()
    listing = client.get("/recon/breaks/").content.decode()
    assert listing.count("data-break=") == ReconBreak.objects.filter(state="open").count()
    only = client.get("/recon/breaks/?kind=amount").content.decode()
    assert 'data-kind="amount"' in only and 'data-kind="bank_only"' not in only
    amount = ReconBreak.objects.get(last_run=run, kind="amount")
    by_bank = client.get(f"/recon/breaks/?bank={amount.bank_code}").content.decode()
    assert f'data-break="{amount.pk}"' in by_bank
    assert 'data-break="' not in client.get("/recon/breaks/?min_age=5").content.decode()  # all found today
    assert f'data-break="{amount.pk}"' in client.get("/recon/breaks/?max_age=0").content.decode()
    # Another region: 404 for the run and its breaks; their list is empty.
    county = client_for(people["county"])
    assert county.get(f"/recon/runs/{run.pk}/").status_code == 404
    assert county.get(f"/recon/breaks/{amount.pk}/").status_code == 404
    assert 'data-break="' not in county.get("/recon/breaks/?state=all").content.decode()
    assert f'data-run="{run.pk}"' not in county.get("/recon/").content.decode()


def test_a_bank_user_sees_only_their_banks_breaks_and_cannot_run_or_resolve(recon, client_for):
    people = recon["people"]
    run = start_sandbox_run(client_for(people["finance"]), recon)
    amount = ReconBreak.objects.get(last_run=run, kind="amount")
    bank = set_bank(people["bank"], amount.bank_code)
    others = set(ReconBreak.objects.exclude(bank_code=amount.bank_code).values_list("bank_code", flat=True))
    other = set_bank(people["other_bank"], sorted(others - {""})[0] if others - {""} else "B999")
    client = client_for(bank)
    listing = client.get("/recon/breaks/?state=all").content.decode()
    mine = ReconBreak.objects.filter(bank_code=amount.bank_code)
    assert listing.count("data-break=") == mine.count() >= 1
    assert client.get(f"/recon/breaks/{amount.pk}/").status_code == 200
    run_page = client.get(f"/recon/runs/{run.pk}/").content.decode()
    assert f'data-break="{amount.pk}"' in run_page
    assert all(
        f'data-break="{b.pk}"' not in run_page for b in ReconBreak.objects.exclude(bank_code=amount.bank_code)
    )
    assert 'data-count="matched_by_key"' not in run_page  # the whole run's counts are not the bank's
    files = [i["file"] for i in run.sources["inputs"] if i["bank"] != amount.bank_code]
    assert files and all(f'data-file="{f}"' not in run_page for f in files)
    # No run form, no resolve: 403; a comment is theirs to write.
    assert 'id="run-form"' not in client.get("/recon/").content.decode()
    assert client.post("/recon/run/", {"use_sandbox": "on"}).status_code == 403
    assert (
        client.post(f"/recon/breaks/{amount.pk}/action/", {"action": "resolve", "reason": "x"}).status_code
        == 403
    )
    assert 'id="resolve-form"' not in client.get(f"/recon/breaks/{amount.pk}/").content.decode()
    client.post(f"/recon/breaks/{amount.pk}/comment/", {"text": "本行已核实，次日补发"})
    assert BreakComment.objects.filter(brk=amount, author=bank).exists()
    # Another bank's user: 404 on this break, its comment route too; nothing of this bank listed.
    stranger = client_for(other)
    assert stranger.get(f"/recon/breaks/{amount.pk}/").status_code == 404
    assert stranger.post(f"/recon/breaks/{amount.pk}/comment/", {"text": "x"}).status_code == 404
    assert f'data-break="{amount.pk}"' not in stranger.get("/recon/breaks/?state=all").content.decode()
    # A bank user whose account names no bank sees no break.
    nobody = set_bank(people["bank"], "")
    assert 'data-break="' not in client_for(nobody).get("/recon/breaks/?state=all").content.decode()


def test_owner_comment_ticket_and_resolve_with_a_reason(recon, client_for):
    people = recon["people"]
    client = client_for(people["finance"])
    run = start_sandbox_run(client, recon)
    brk = ReconBreak.objects.get(last_run=run, kind="bank_only")
    url = f"/recon/breaks/{brk.pk}/"
    page = client.get(url).content.decode()
    assert "仅银行有：银行文件中有这笔" in page and brk.lines[0]["file"] in page
    # Owner: someone who may work reconciliations in the region; another region's account is refused.
    client.post(f"{url}action/", {"action": "assign", "owner": people["engineer"].pk})
    brk.refresh_from_db()
    assert brk.owner == people["engineer"]
    client.post(f"{url}action/", {"action": "assign", "owner": people["county"].pk})
    brk.refresh_from_db()
    assert brk.owner == people["engineer"]
    # Comment; an empty one is refused.
    client.post(f"{url}comment/", {"text": "已联系银行核实"})
    response = client.post(f"{url}comment/", {"text": "   "}, follow=True)
    assert "意见不能为空" in response.content.decode()
    assert list(brk.comments.values_list("text", flat=True)) == ["已联系银行核实"]
    # Link an existing ticket; an unknown number is refused in Chinese.
    ticket = desk.create_ticket(
        people["finance"],
        region=recon["region"],
        title="银行流水核对",
        system="对账管理",
        ticket_type="咨询",
        severity="一般",
        description="核对银行流水",
        requester_name="财政",
    )
    response = client.post(f"{url}action/", {"action": "link", "ticket": "NOPE-1"}, follow=True)
    assert "不存在或不在您的授权范围内" in response.content.decode()
    client.post(f"{url}action/", {"action": "link", "ticket": ticket.number})
    brk.refresh_from_db()
    assert brk.ticket == ticket
    # A ticket opened from another break (the path of checks' 由问题开工单).
    other = ReconBreak.objects.get(last_run=run, kind="amount")
    response = client.post(f"/recon/breaks/{other.pk}/action/", {"action": "ticket", "severity": "紧急"})
    other.refresh_from_db()
    assert other.ticket is not None and response["Location"] == f"/recon/breaks/{other.pk}/"
    assert other.ticket.system == "对账管理" and other.ticket.severity == "紧急"
    assert "金额不符" in other.ticket.description and other.vouchers[0] in other.ticket.description
    # Resolve without a reason: refused in Chinese, nothing saved.
    updates = AuditEvent.objects.filter(object_type="recon.reconbreak", object_id=str(brk.pk)).count()
    response = client.post(f"{url}action/", {"action": "resolve", "reason": "  "}, follow=True)
    assert "请填写处理说明" in response.content.decode()
    brk.refresh_from_db()
    assert brk.state == ReconBreak.State.OPEN and brk.resolution == "" and brk.resolved_at is None
    assert AuditEvent.objects.filter(object_type="recon.reconbreak", object_id=str(brk.pk)).count() == updates
    client.post(f"{url}action/", {"action": "resolve", "reason": "银行次日补记凭证号"})
    brk.refresh_from_db()
    assert brk.state == ReconBreak.State.RESOLVED and brk.resolution == "银行次日补记凭证号"
    assert brk.resolved_by == people["finance"]
    page = client.get(url).content.decode()
    assert 'data-state="resolved"' in page and 'id="resolve-form"' not in page
    # Every step is in the audit chain.
    done = [
        e.detail.get("action")
        for e in AuditEvent.objects.filter(object_type__startswith="recon.").exclude(detail={})
    ]
    for action in ("发起对账", "指定责任人", "填写差异意见", "关联工单", "由差异开工单", "标为已解决"):
        assert action in done, action


def test_uploaded_files_each_with_its_format_and_a_refused_file_named(recon, client_for):
    people = recon["people"]
    client = client_for(people["finance"])
    path, bank = csv_file(recon)
    csv_format = BankFormat.objects.get(code="csv-gbk")
    bad = "交易日期,支付凭证号,银行流水号,付款账号,付款户名,收款账号,收款户名,金额,用途,区划代码,交易状态,退票原因\n"
    bad += "2026-13-45,PV1,SN1,1,甲,2,乙,10.00,用途,152500000,成功,\n"
    bad = bad.encode("gbk")
    response = client.post(
        "/recon/run/",
        {
            "region": recon["region"].pk,
            "database": recon["database"].pk,
            **PERIOD,
            "date_window": 1,
            "amount": "0.00",
            "transit_days": 10,
            "file_0": SimpleUploadedFile(path.name, path.read_bytes()),
            "format_0": csv_format.pk,
            "bank_0": bank,
            "file_1": SimpleUploadedFile("坏文件.csv", bad),
            "format_1": csv_format.pk,
            "bank_1": bank,
        },
    )
    run = ReconRun.objects.latest("pk")
    assert response["Location"] == f"/recon/runs/{run.pk}/"
    assert run.status == ReconRun.Status.DONE, run.message
    assert run.sources["files"] == 1 and len(run.sources["refused"]) == 1
    refused = run.sources["refused"][0]
    assert refused["line"] == 2 and refused["field"] == "交易日期"
    page = client.get(f"/recon/runs/{run.pk}/").content.decode()
    assert "拒收：第 2 行" in page and "“交易日期”" in page and "坏文件.csv" in page
    # Only that bank's vouchers were the book side: every break is with that bank.
    assert set(ReconBreak.objects.filter(last_run=run).values_list("bank_code", flat=True)) <= {bank}
    # A row without a format, and a run with neither files nor the sandbox, are refused in Chinese.
    response = client.post(
        "/recon/run/",
        {
            "region": recon["region"].pk,
            "database": recon["database"].pk,
            **PERIOD,
            "date_window": 1,
            "amount": "0",
            "transit_days": 10,
            "file_0": SimpleUploadedFile("a.csv", b"x"),
        },
        follow=True,
    )
    assert "请选择银行文件格式" in response.content.decode()
    response = client.post(
        "/recon/run/",
        {
            "region": recon["region"].pk,
            "database": recon["database"].pk,
            **PERIOD,
            "date_window": 1,
            "amount": "0",
            "transit_days": 10,
        },
        follow=True,
    )
    assert "请上传至少一个银行文件" in response.content.decode()
    assert ReconRun.objects.count() == 1
    # Every file refused: the run fails, saying so, with the reasons kept.
    response = client.post(
        "/recon/run/",
        {
            "region": recon["region"].pk,
            "database": recon["database"].pk,
            **PERIOD,
            "date_window": 1,
            "amount": "0",
            "transit_days": 10,
            "file_0": SimpleUploadedFile("坏文件.csv", bad),
            "format_0": csv_format.pk,
            "bank_0": bank,
        },
    )
    failed = ReconRun.objects.latest("pk")
    assert failed.status == ReconRun.Status.FAILED and "全部被拒收" in failed.message
    assert "拒收：第 2 行" in client.get(f"/recon/runs/{failed.pk}/").content.decode()


def test_format_edit_refuses_invalid_yaml_and_preview_names_line_and_field(recon, client_for):
    people = recon["people"]
    client = client_for(people["engineer"])
    listing = client.get("/recon/formats/").content.decode()
    for code in ("csv-gbk", "excel", "fixed-gbk", "xml-gbk"):
        assert f'data-format="{code}"' in listing
    fmt = BankFormat.objects.get(code="csv-gbk")
    url = f"/recon/formats/{fmt.pk}/"
    before = (fmt.definition, fmt.version)
    events = AuditEvent.objects.filter(object_type="recon.bankformat").count()
    # Not YAML; YAML that is not a definition: refused, naming the problem; nothing written.
    page = client.post(url, {"definition": "name: [未闭合", "action": "save"}).content.decode()
    assert "格式定义不是合法的 YAML" in page
    page = client.post(
        url, {"definition": fmt.definition.replace("layout: csv", "layout: pdf"), "action": "save"}
    ).content.decode()
    assert "“版式”（layout）应为" in page
    page = client.post(
        url, {"definition": fmt.definition.replace("  amount: 金额\n", ""), "action": "save"}
    ).content.decode()
    assert "缺少必需的字段：金额" in page
    fmt.refresh_from_db()
    assert (fmt.definition, fmt.version) == before
    assert AuditEvent.objects.filter(object_type="recon.bankformat").count() == events
    # A valid change is a new version, recorded.
    changed = fmt.definition.replace("name: 代理银行 CSV（GBK，含合计行）", "name: 代理银行 CSV（第二版）")
    response = client.post(url, {"definition": changed, "bank_code": "B103", "action": "save"})
    assert response.status_code == 302
    fmt.refresh_from_db()
    assert (
        fmt.version == before[1] + 1
        and fmt.name == "代理银行 CSV（第二版）"
        and fmt.updated_by == people["engineer"]
    )
    assert AuditEvent.objects.filter(object_type="recon.bankformat").count() > events
    # Preview: a good file's first rows with every field named; a malformed one names line and field.
    path, _ = csv_file(recon)
    page = client.post(
        url,
        {
            "definition": fmt.definition,
            "action": "preview",
            "sample": SimpleUploadedFile(path.name, path.read_bytes()),
        },
    ).content.decode()
    assert 'id="preview-rows"' in page and 'data-field-name="pay_cert_no"' in page and "支付凭证号" in page
    from caiwei.recon.formats import parse_definition, read

    records = list(read(parse_definition(fmt.definition), path))
    assert len(records) >= 2
    assert page.count('<tr><td class="text-end">') == min(10, len(records))
    assert f"<td>{records[0].values['pay_cert_no']}</td>" in page
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",", b",abc", 7)  # the 8th column (金额) of line 3 is no amount now
    broken = b"\n".join(lines)
    page = client.post(
        url,
        {"definition": fmt.definition, "action": "preview", "sample": SimpleUploadedFile("坏.csv", broken)},
    ).content.decode()
    assert (
        "data-preview-error" in page
        and "<span data-line>3</span>" in page
        and "<span data-field>金额</span>" in page
    )
    fmt.refresh_from_db()
    assert fmt.version == before[1] + 1  # a preview writes nothing
    # A new format; its code must be new.
    response = client.post(
        "/recon/formats/new/", {"code": "b103-csv", "definition": changed, "action": "save"}
    )
    assert response.status_code == 302 and BankFormat.objects.get(code="b103-csv").version == 1
    page = client.post(
        "/recon/formats/new/", {"code": "b103-csv", "definition": changed, "action": "save"}
    ).content.decode()
    assert "编号“b103-csv”已存在" in page
    # Finance staff may not edit formats.
    assert client_for(people["finance"]).get(url).status_code == 403
