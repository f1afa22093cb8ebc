"""The monthly O&M report 运维月报, laid out after GB/T 9704 (党政机关公文格式) as far as a report needs it.

The content is built once (``build``: title, period, issuer, numbered sections, captioned tables, charts, 落款) and
rendered twice from that one structure, so both files carry the same words and figures:

- Word (python-docx): A4, margins 37/35/28/26 mm, header with the contract and the issuer, page number “— 1 —” in
  the footer (a PAGE field), 仿宋 body and 黑体 headings set on the East Asian runs, table header rows repeated on
  every page;
- PDF (WeasyPrint over HTML, Debian's fonts-noto-cjk embedded as subsets): the same page box, header and footer.

The contract name and the issuer come from ``ReportSettings`` (月报设置, kept by the 项目经理 per region).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.utils import timezone

from caiwei.regions.models import Region
from caiwei.web.templatetags.caiwei import percent

from .kpi import NOTHING_DUE, monthly_kpis
from .models import ReportSettings

BODY_FONT, HEADING_FONT, LATIN_FONT = "仿宋", "黑体", "Times New Roman"
# What the PDF falls back to where the Windows fonts are absent (Debian: fonts-noto-cjk).
PDF_BODY = '"FangSong", "仿宋", "FangSong_GB2312", "Noto Serif CJK SC", serif'
PDF_HEADING = '"SimHei", "黑体", "Noto Sans CJK SC", sans-serif'
MARGINS_MM = {"top": 37, "bottom": 35, "left": 28, "right": 26}  # GB/T 9704-2012 7.1 (版心 156 × 225 mm)
UNSET_CONTRACT, UNSET_ISSUER = "（未设置合同名称）", "（未设置报送单位）"


@cache
def _cjk_font() -> str | None:
    """A CJK font matplotlib can use (Debian's fonts-noto-cjk, installed at set-up), or None."""
    from matplotlib import font_manager

    for name in ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "SimHei"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            return name
    return None


def _chart(
    labels: list[str], values: list[float], title: str, unit: str = "", target: float | None = None
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    font = _cjk_font()
    if font:
        plt.rcParams["font.sans-serif"] = [font]
    plt.rcParams["axes.unicode_minus"] = False
    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=150)
    ax.bar(labels, values, color="#8b1a1a")
    if target is not None:
        ax.axhline(target, color="#555", linestyle="--", linewidth=1)
    if title:
        ax.set_title(title)
    ax.set_ylabel(unit)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# --- the content, once --------------------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # heading | para | table | chart
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    image: bytes = b""


@dataclass
class Report:
    month: str
    title: str
    contract: str
    issuer: str
    recipient: str
    period: str
    issued: str  # 成文日期, “2026年11月27日”
    blocks: list[Block]
    kpis: dict

    @property
    def header_text(self) -> str:
        return f"{self.contract}　{self.issuer}"

    @property
    def file_stem(self) -> str:
        return f"运维月报-{self.month}"


def settings_for(user) -> ReportSettings | None:
    """The 月报设置 of the user's first granted region, or of the nearest region above it that has one."""
    for region in user.regions.order_by("path") if user.is_authenticated else []:
        codes = [c for c in region.path.split("/") if c]
        found = {s.region.code: s for s in ReportSettings.objects.filter(region__code__in=codes)}
        for code in reversed(codes):
            if code in found:
                return found[code]
    return None


def _cn_date(day) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def rate_text(row: dict) -> str:
    return row["verdict"] if row["rate"] is None else percent(row["rate"])


def build(user, month: str | None = None, now: datetime | None = None) -> Report:
    now = now or timezone.now()
    k = monthly_kpis(user, month, now=now)
    setting = settings_for(user)
    year, mon = (int(x) for x in k["month"].split("-"))
    first = datetime(year, mon, 1).date()
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    local_now = timezone.localtime(now)
    period = f"{_cn_date(first)}至{_cn_date(last)}"
    if local_now.date() <= last:
        period += f"（统计截至 {_cn_date(local_now)} {local_now:%H:%M}）"
    regions = "、".join(
        Region.objects.filter(pk__in=user.regions.values("pk")).values_list("name", flat=True)
    )
    hotline = k["hotline"]
    blocks: list[Block] = []
    tables = 0
    charts = 0

    def heading(text: str) -> None:
        blocks.append(Block("heading", text))

    def para(text: str) -> None:
        blocks.append(Block("para", text))

    def table(caption: str, header: list[str], rows: list[list]) -> None:
        nonlocal tables
        tables += 1
        blocks.append(Block("table", f"表{tables}　{caption}", header, [[str(c) for c in r] for r in rows]))

    def chart(caption: str, image: bytes) -> None:
        nonlocal charts
        charts += 1
        blocks.append(Block("chart", f"图{charts}　{caption}", image=image))

    heading("一、总体情况")
    para(
        f"本报告统计范围为{regions or '（无授权区划）'}。本月受理工单 {k['tickets']} 张，目前未办结 {k['open']} 张；"
        f"热线来电 {hotline['calls']} 个，接通 {hotline['answered']} 个，未接 {hotline['missed']} 个，"
        f"其中按时回拨 {hotline['callback_in_time']} 个；咨询类工单 {k['consultations']} 张。"
        f"时限尚未届满且尚未完成的事项计为“进行中”，不计入及时率的分子和分母；"
        f"没有到期事项的指标记为“{NOTHING_DUE}”。"
    )
    heading("二、合同考核指标")
    table(
        "合同考核指标完成情况",
        ["指标", "合同要求", "已到期/已完成", "其中按时", "进行中", "本月实际", "结论"],
        [
            [
                r["label"],
                r["requirement"],
                r["due"],
                r["met"],
                r["pending"] if r["deadline"] else "—",
                rate_text(r),
                r["verdict"] if r["rate"] is not None else "—",
            ]
            for r in k["rates"]
        ],
    )
    heading("三、服务时限超时情况")
    table(
        "各严重程度超时工单数",
        ["严重程度", "首次响应超时", "解决超时"],
        [[b["severity"], b["first_response"], b["resolution"]] for b in k["breaches"]],
    )
    heading("四、用户满意度")
    by_region = k["satisfaction_by_region"]
    if by_region:
        table(
            "各区划满意率",
            ["区划", "评价数", "满意数", "满意率", "要求", "结论"],
            [
                [
                    r["region"],
                    r["count"],
                    r["satisfied"],
                    percent(r["rate"]),
                    percent(r["target"]),
                    "达标" if r["ok"] else "未达标",
                ]
                for r in by_region
            ],
        )
        chart(
            "各区划满意率（虚线为旗县 90% 要求）",
            _chart([r["region"] for r in by_region], [r["rate"] * 100 for r in by_region], "", "%", 90),
        )
    else:
        para("本月无满意度评价。")
    if k["satisfaction_by_agent"]:
        table(
            "各处理人满意率",
            ["处理人", "评价数", "满意数", "满意率"],
            [
                [a["agent"], a["count"], a["satisfied"], percent(a["rate"])]
                for a in k["satisfaction_by_agent"]
            ],
        )
    heading("五、投诉")
    if k["complaints"]:
        table(
            f"{year}年有效投诉",
            ["区划", "本年有效投诉", "是否达到违约线（3 次）"],
            [[c["region"], c["valid"], "是" if c["breach"] else "否"] for c in k["complaints"]],
        )
    else:
        para("本年无有效投诉。")
    heading("六、问题分布")
    systems = k["top_systems"]
    if systems:
        table("问题最多的系统", ["系统", "工单数"], [[name, count] for name, count in systems])
        chart(
            "问题最多的系统",
            _chart([n for n, _ in systems], [c for _, c in systems], "", "张"),
        )
        table("工单类型分布", ["类型", "工单数"], [[name, count] for name, count in k["top_types"]])
    else:
        para("本月无工单。")
    return Report(
        month=k["month"],
        title=f"运维月报（{year}年{mon}月）",
        contract=setting.contract_name if setting else UNSET_CONTRACT,
        issuer=setting.issuer if setting else UNSET_ISSUER,
        recipient=setting.recipient if setting else "",
        period=period,
        issued=_cn_date(local_now),
        blocks=blocks,
        kpis=k,
    )


# --- Word ---------------------------------------------------------------------------------------------------------


def _fonts(run, east_asia: str, size: float | None = None, bold: bool | None = None) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.name = LATIN_FONT
    rpr = run._element.get_or_add_rPr()
    rfonts = rpr.get_or_add_rFonts()
    rfonts.set(qn("w:eastAsia"), east_asia)
    rfonts.set(qn("w:ascii"), LATIN_FONT)
    rfonts.set(qn("w:hAnsi"), LATIN_FONT)
    if size is not None:
        run.font.size = Pt(size)
    if bold is not None:
        run.bold = bold


def _page_field(paragraph) -> None:
    """A PAGE field between em dashes: “— 1 —”."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def run_with(element):
        run = paragraph.add_run()
        _fonts(run, "宋体", 14)
        run._element.append(element)
        return run

    _fonts(paragraph.add_run("— "), "宋体", 14)
    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    run_with(begin)
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = " PAGE "
    run_with(instr)
    separate = OxmlElement("w:fldChar")
    separate.set(qn("w:fldCharType"), "separate")
    run_with(separate)
    _fonts(paragraph.add_run("1"), "宋体", 14)
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    run_with(end)
    _fonts(paragraph.add_run(" —"), "宋体", 14)


def _bottom_border(paragraph) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    ppr.append(borders)


def _repeat_header(row) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    trpr = row._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    trpr.append(flag)


def _column_widths(columns: int) -> list[float]:
    """Millimetres across the 156 mm type area: the first (label) column wider once there are four or more."""
    full = 210 - MARGINS_MM["left"] - MARGINS_MM["right"]
    if columns < 4:
        return [full / columns] * columns
    first = 36
    return [first] + [(full - first) / (columns - 1)] * (columns - 1)


def grid_table(
    doc, header: list[str], rows: list[list], widths: list[float], center_after_first: bool = False
):
    """A bordered table of the official documents: a repeated centred header row in the heading font, body rows in the
    body font at 10.5 pt, fixed column widths in millimetres (the grid, which LibreOffice and WPS follow), single line
    spacing. ``center_after_first`` centres every column but the first."""
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Mm

    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _repeat_header(table.rows[0])
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
        _fonts(cell.paragraphs[0].add_run(text), HEADING_FONT, 10.5)
    for values in rows:
        for n, (cell, text) in enumerate(zip(table.add_row().cells, values, strict=True)):
            if n and center_after_first:
                cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
            _fonts(cell.paragraphs[0].add_run(str(text)), BODY_FONT, 10.5)
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = Mm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = Mm(width)
            cell.paragraphs[0].paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    return table


def render_docx(report: Report) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.oxml.ns import qn
    from docx.shared import Cm, Mm, Pt

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = LATIN_FONT
    normal.font.size = Pt(16)  # 三号仿宋
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    normal.paragraph_format.line_spacing = Pt(28)
    normal.paragraph_format.space_after = Pt(0)
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    section.header_distance, section.footer_distance = Mm(15), Mm(20)  # 页码在版心下边缘之下约 7 mm
    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    header.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    _fonts(header.add_run(report.header_text), BODY_FONT, 10.5)
    _bottom_border(header)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    _page_field(footer)

    def paragraph(text: str, font: str = BODY_FONT, size: float = 16, align=None, indent: bool = False, **kw):
        p = doc.add_paragraph()
        if align is not None:
            p.alignment = align
        if indent:
            p.paragraph_format.first_line_indent = Pt(size * 2)
        _fonts(p.add_run(text), font, size, kw.get("bold"))
        return p

    title = paragraph(report.title, HEADING_FONT, 22, WD_ALIGN_PARAGRAPH.CENTER)
    title.paragraph_format.line_spacing = Pt(36)
    title.paragraph_format.space_after = Pt(14)
    if report.recipient:
        paragraph(f"{report.recipient}：")
    for label, value in (
        ("合同名称", report.contract),
        ("报送单位", report.issuer),
        ("报告期间", report.period),
        ("报送日期", report.issued),
    ):
        paragraph(f"{label}：{value}", size=14)
    for block in report.blocks:
        if block.kind == "heading":
            paragraph(block.text, HEADING_FONT, 16).paragraph_format.keep_with_next = True
        elif block.kind == "para":
            paragraph(block.text, indent=True)
        elif block.kind == "table":
            caption = paragraph(block.text, HEADING_FONT, 12, WD_ALIGN_PARAGRAPH.CENTER)
            caption.paragraph_format.keep_with_next = True
            caption.paragraph_format.space_before = Pt(6)
            grid_table(
                doc, block.header, block.rows, _column_widths(len(block.header)), center_after_first=True
            )
        elif block.kind == "chart":
            picture = doc.add_paragraph()
            picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
            picture.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
            picture.paragraph_format.keep_with_next = True
            picture.paragraph_format.space_before = Pt(8)
            picture.add_run().add_picture(io.BytesIO(block.image), width=Cm(15))
            paragraph(block.text, BODY_FONT, 12, WD_ALIGN_PARAGRAPH.CENTER)
    # 落款: the issuer and the date, right, with some room above (GB/T 9704 7.3.5).
    sign = paragraph(report.issuer, align=WD_ALIGN_PARAGRAPH.RIGHT)
    sign.paragraph_format.space_before = Pt(56)
    sign.paragraph_format.keep_with_next = True
    for p in (sign, paragraph(report.issued, align=WD_ALIGN_PARAGRAPH.RIGHT)):
        p.paragraph_format.right_indent = Pt(32)  # 右空二字
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


# --- PDF ----------------------------------------------------------------------------------------------------------


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_html(report: Report) -> str:
    e = html.escape
    m = MARGINS_MM
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>",
        e(report.title),
        "</title><style>",
        f"@page {{ size: A4; margin: {m['top']}mm {m['right']}mm {m['bottom']}mm {m['left']}mm;",
        f" @top-center {{ content: {_css_string(report.header_text)}; font-family: {PDF_BODY}; font-size: 10.5pt;",
        " border-bottom: 0.5pt solid #000; vertical-align: bottom; padding-bottom: 2mm; margin-bottom: 8mm; }",
        f" @bottom-center {{ content: '— ' counter(page) ' —'; font-family: {PDF_BODY}; font-size: 14pt;",
        " vertical-align: top; padding-top: 7mm; } }",
        f"body {{ font-family: {PDF_BODY}; font-size: 16pt; line-height: 28pt; margin: 0; }}",
        f"h1 {{ font-family: {PDF_HEADING}; font-weight: normal; font-size: 22pt; line-height: 36pt;",
        " text-align: center; margin: 0 0 14pt; }",
        f"h2 {{ font-family: {PDF_HEADING}; font-weight: normal; font-size: 16pt; margin: 0;",
        " break-after: avoid; }",
        "p { margin: 0; } p.body { text-indent: 2em; } p.meta { font-size: 14pt; }",
        f"p.caption {{ font-family: {PDF_HEADING}; font-size: 12pt; text-align: center; margin-top: 6pt;",
        " line-height: 20pt; break-after: avoid; }",
        "p.figure { font-size: 12pt; text-align: center; line-height: 20pt; }",
        "table { border-collapse: collapse; width: 100%; margin: 0 0 6pt; font-size: 10.5pt; line-height: 15pt; }",
        "th, td { border: 0.5pt solid #000; padding: 2pt 4pt; text-align: center; }",
        "th { white-space: nowrap; } td:first-child { text-align: left; }",
        f"th {{ font-family: {PDF_HEADING}; font-weight: normal; }} tr {{ break-inside: avoid; }}",
        "div.chart { text-align: center; break-inside: avoid; } div.chart img { width: 150mm; }",
        "div.tail { break-inside: avoid; }",
        "div.sign { break-inside: avoid; margin-top: 56pt; text-align: right; padding-right: 2em; }",
        "</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
    ]
    if report.recipient:
        parts.append(f"<p>{e(report.recipient)}：</p>")
    for label, value in (
        ("合同名称", report.contract),
        ("报送单位", report.issuer),
        ("报告期间", report.period),
        ("报送日期", report.issued),
    ):
        parts.append(f"<p class='meta'>{label}：{e(value)}</p>")
    for n, block in enumerate(report.blocks):
        if n == len(report.blocks) - 1:
            parts.append("<div class='tail'>")  # the last block shares its page with the 落款
        if block.kind == "heading":
            parts.append(f"<h2>{e(block.text)}</h2>")
        elif block.kind == "para":
            parts.append(f"<p class='body'>{e(block.text)}</p>")
        elif block.kind == "table":
            parts.append(f"<p class='caption'>{e(block.text)}</p><table><thead><tr>")
            parts.extend(f"<th>{e(h)}</th>" for h in block.header)
            parts.append("</tr></thead><tbody>")
            for row in block.rows:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table>")
        elif block.kind == "chart":
            data = base64.b64encode(block.image).decode()
            parts.append(
                f"<div class='chart'><img src='data:image/png;base64,{data}' alt='{e(block.text)}'>"
                f"<p class='figure'>{e(block.text)}</p></div>"
            )
    parts.append(f"<div class='sign'><p>{e(report.issuer)}</p><p>{e(report.issued)}</p></div></div>")
    parts.append("</body></html>")
    return "".join(parts)


def render_pdf(report: Report) -> bytes:
    from weasyprint import HTML

    return HTML(string=render_html(report)).write_pdf()


FORMATS = {
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", render_docx),
    "pdf": ("application/pdf", render_pdf),
}


def monthly_report(
    user, month: str | None = None, fmt: str = "docx", now: datetime | None = None
) -> tuple[str, bytes]:
    """(file name, bytes) of the month's report as Word (``fmt="docx"``) or PDF, over the regions ``user`` sees."""
    if fmt not in FORMATS:
        raise ValueError(f"不支持的格式“{fmt}”，可选：{'、'.join(FORMATS)}")
    report = build(user, month, now)
    return f"{report.file_stem}.{fmt}", FORMATS[fmt][1](report)


def content_type(fmt: str) -> str:
    return FORMATS[fmt][0]
