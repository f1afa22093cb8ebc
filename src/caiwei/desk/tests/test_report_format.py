"""The 运维月报 as a document one can hand to a finance bureau: GB/T 9704-like page, header, page numbers, captions,
落款, and the same content as a PDF with the CJK font embedded; the figures are the dashboard's."""

import io
import re
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from docx.oxml.ns import qn
from pypdf import PdfReader

from caiwei.desk import flow, services
from caiwei.desk.kpi import monthly_kpis
from caiwei.desk.models import ReportSettings
from caiwei.desk.report import build, monthly_report, rate_text

from .test_report import rated_tickets

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
CONTRACT, ISSUER = "锡林郭勒盟财政一体化系统运维服务合同（演示）", "财维运维项目组（演示）"


@pytest.fixture
def report_settings(regions):
    return ReportSettings.objects.create(
        region=regions["152500000"], contract_name=CONTRACT, issuer=ISSUER, recipient="盟财政局（演示）"
    )


def many_tickets(users, regions, n=40):
    """Enough tickets that the tables run over a page."""
    systems = ["国库集中支付", "指标管理", "预算编制", "会计核算", "工资统发", "非税收入", "决算", "其他"]
    for i in range(n):
        ticket = services.create_ticket(
            users["agent"],
            region=regions["152500000"],
            system=systems[i % len(systems)],
            ticket_type=["故障", "咨询", "操作指导"][i % 3],
            severity="一般",
            title=f"问题{i}",
            description="描述",
            requester_name="经办人（演示）",
        )
        if i % 2:
            services.change_status(users["agent"], ticket, flow.RESPONDED)


def test_word_layout(users, regions, report_settings):
    rated_tickets(users, regions)
    name, data = monthly_report(users["pm"])
    assert name.endswith(".docx")
    doc = Document(io.BytesIO(data))
    section = doc.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)  # A4
    margins = (section.top_margin, section.bottom_margin, section.left_margin, section.right_margin)
    assert tuple(round(m.mm) for m in margins) == (37, 35, 28, 26)
    header = "".join(p.text for p in section.header.paragraphs)
    assert CONTRACT in header and ISSUER in header
    footer_xml = section.footer._element.xml
    assert " PAGE " in footer_xml and "fldChar" in footer_xml and "— " in footer_xml
    body = doc.element.body
    # Every table directly follows its caption paragraph 表N, and repeats its header row on every page.
    children = list(body.iterchildren())
    tables = [i for i, el in enumerate(children) if el.tag == qn("w:tbl")]
    assert len(tables) >= 3
    for n, i in enumerate(tables, 1):
        caption = "".join(t.text or "" for t in children[i - 1].iter(qn("w:t")))
        assert caption.startswith(f"表{n}"), caption
        assert children[i].find(f"{qn('w:tr')}/{qn('w:trPr')}/{qn('w:tblHeader')}") is not None
    texts = [p.text for p in doc.paragraphs if p.text.strip()]
    assert texts[0].startswith("运维月报")
    assert f"合同名称：{CONTRACT}" in texts and any(t.startswith("报告期间：") for t in texts)
    assert texts[-2] == ISSUER and re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", texts[-1])  # 落款
    assert any(t.startswith("报送日期：") and t.endswith(texts[-1]) for t in texts)
    # Chinese fonts named on the East Asian runs.
    fonts = {r._element.rPr.rFonts.get(qn("w:eastAsia")) for p in doc.paragraphs for r in p.runs if r.text}
    assert {"仿宋", "黑体"} <= fonts
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert 'w:eastAsia="仿宋"' in z.read("word/styles.xml").decode()


def test_report_shows_the_dashboards_figures_and_in_progress(users, regions, report_settings):
    day = datetime(2026, 11, 10, 9, tzinfo=SH)
    ticket = services.create_ticket(
        users["agent"],
        region=regions["152500000"],
        system="国库集中支付",
        ticket_type="故障",
        title="问题",
        description="描述",
        requester_name="经办人（演示）",
    )
    type(ticket).objects.filter(pk=ticket.pk).update(opened_at=day)
    now = day + timedelta(minutes=30)
    report = build(users["pm"], "2026-11", now=now)
    k = monthly_kpis(users["pm"], "2026-11", now=now)
    kpi_table = next(b for b in report.blocks if b.kind == "table")
    assert kpi_table.text == "表1　合同考核指标完成情况"
    rows = {r[0]: r for r in kpi_table.rows}
    for r in k["rates"]:
        assert rows[r["label"]][5] == rate_text(r)
    assert rows["首次响应及时率"][4:] == ["1", "—（无到期项）", "—"]
    assert "（统计截至 2026年11月10日 09:30）" in report.period


def test_pdf(users, regions, report_settings, tmp_path):
    rated_tickets(users, regions)
    many_tickets(users, regions)
    name, data = monthly_report(users["pm"], fmt="pdf")
    assert name.endswith(".pdf") and data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (210, 297)
    pages = [p.extract_text() for p in reader.pages]
    text = "".join(pages)
    assert "运维月报" in text and "本月受理工单" in text and CONTRACT in text and "表1" in text
    for n, page in enumerate(pages, 1):
        assert f"— {n} —" in page, n
    fonts = set()
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            descriptor = (
                font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            )
            descriptor = descriptor.get_object()
            if any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                fonts.add(str(font["/BaseFont"]))
    assert any("CJK" in f for f in fonts), fonts  # the CJK font is embedded (a subset)
    word = Document(io.BytesIO(monthly_report(users["pm"])[1]))
    flat = re.sub(r"\s", "", text)
    missing = [
        c.text
        for t in word.tables
        for row in t.rows
        for c in row.cells
        if re.sub(r"\s", "", c.text) not in flat
    ]
    assert missing == []  # the same words and figures in both files
    (tmp_path / name).write_bytes(data)
    from django.conf import settings

    sample = settings.VAR_DIR / "screenshots" / "monthly-report.pdf"  # kept for rendering and looking at
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_bytes(data)
    sample.with_suffix(".docx").write_bytes(monthly_report(users["pm"])[1])
