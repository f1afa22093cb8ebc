"""巡检报告 (Word): cover, scope, each item's result with its evidence (probe values, check findings, reconciliation
breaks, an engineer's notes and screenshots), a chart over the plan's recent runs, conclusions and sign-off lines.
The page set-up, fonts and the CJK chart are the monthly report's (desk/report.py)."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import timedelta

from django.utils import timezone

from caiwei.desk import report as desk_report
from caiwei.desk.models import ReportSettings

from .models import KIND_LABELS, Run, RunItem

RESULT_TEXT = {"ok": "正常", "abnormal": "异常", "": "未检查"}
CHART_DAYS = 30
IMAGE_TYPES = {"png", "jpg", "jpeg", "gif", "bmp"}


def _settings(region) -> ReportSettings | None:
    codes = [c for c in region.path.split("/") if c] or [region.code]
    found = {
        s.region.code: s
        for s in ReportSettings.objects.filter(region__code__in=codes).select_related("region")
    }
    return next((found[c] for c in reversed(codes) if c in found), None)


def _local(instant) -> str:
    return f"{timezone.localtime(instant):%Y年%m月%d日 %H:%M}" if instant else "—"


def evidence_rows(item: RunItem) -> tuple[list[str], list[list[str]]]:
    """The evidence table of one item (header, rows); empty for a manual item."""
    ev = item.evidence or {}
    if item.kind == "probe":
        rows = [
            [
                p.get("name", ""),
                "正常" if p.get("ok") else "异常",
                "—" if p.get("latency_ms") is None else f"{p['latency_ms']:.0f}",
                (p.get("message") or "")[:60],
            ]
            for p in ev.get("probes", [])
        ]
        return ["监控项", "结果", "耗时（毫秒）", "探测信息"], rows
    if item.kind == "check":
        return ["规则数", "发现问题的规则", "问题条数", "出错规则"], [
            [
                str(ev.get("rules_total", "—")),
                str(ev.get("rules_failing", "—")),
                str(ev.get("findings", "—")),
                str(ev.get("rules_error", "—")),
            ]
        ] if ev else []
    if item.kind == "recon":
        return ["相符笔数", "新差异", "未解决差异", "对账状态"], [
            [
                str(ev.get("matched", "—")),
                str(ev.get("breaks_new", "—")),
                str(ev.get("breaks_open", "—")),
                "完成" if ev.get("status") == "done" else str(ev.get("status", "—")),
            ]
        ] if ev else []
    return [], []


def chart_series(run: Run) -> tuple[str, list[str], list[float], str]:
    """(caption, labels, values, unit) over the plan's runs of the last CHART_DAYS days up to this one: the average
    probe latency per day when the plan probes, else the abnormal items per day."""
    since = run.slot - timedelta(days=CHART_DAYS)
    runs = list(
        Run.objects.filter(plan=run.plan, slot__gt=since, slot__lte=run.slot)
        .prefetch_related("items")
        .order_by("slot")
    )
    latency: dict[str, list[float]] = defaultdict(list)
    abnormal: dict[str, int] = defaultdict(int)
    for r in runs:
        day = f"{timezone.localtime(r.slot):%m-%d}"
        abnormal.setdefault(day, 0)
        for item in r.items.all():
            abnormal[day] += item.result == "abnormal"
            for p in (item.evidence or {}).get("probes", []):
                if p.get("latency_ms") is not None:
                    latency[day].append(float(p["latency_ms"]))
    if latency:
        labels = sorted(latency)
        return "近 30 天监控探测平均耗时", labels, [sum(latency[d]) / len(latency[d]) for d in labels], "毫秒"
    labels = sorted(abnormal)
    return "近 30 天每日异常巡检项数", labels, [float(abnormal[d]) for d in labels], "项"


def render_docx(run: Run) -> bytes:
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_LINE_SPACING
    from docx.oxml.ns import qn
    from docx.shared import Cm, Mm, Pt

    r = desk_report
    plan = run.plan
    setting = _settings(plan.region)
    contract = setting.contract_name if setting else r.UNSET_CONTRACT
    issuer = setting.issuer if setting else r.UNSET_ISSUER
    items = list(run.items.select_related("checked_by", "ticket").prefetch_related("shots"))

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = r.LATIN_FONT
    normal.font.size = Pt(14)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), r.BODY_FONT)
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    normal.paragraph_format.line_spacing = Pt(26)
    normal.paragraph_format.space_after = Pt(0)
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(r.MARGINS_MM["top"]), Mm(r.MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(r.MARGINS_MM["left"]), Mm(r.MARGINS_MM["right"])
    section.header_distance, section.footer_distance = Mm(15), Mm(20)
    section.different_first_page_header_footer = True  # the cover carries neither header nor page number
    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    header.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    r._fonts(header.add_run(f"{contract}　巡检报告"), r.BODY_FONT, 10.5)
    r._bottom_border(header)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    r._page_field(footer)

    def paragraph(
        text: str, font: str = r.BODY_FONT, size: float = 14, align=None, indent: bool = False, bold=None
    ):
        p = doc.add_paragraph()
        if align is not None:
            p.alignment = align
        if indent:
            p.paragraph_format.first_line_indent = Pt(size * 2)
        r._fonts(p.add_run(text), font, size, bold)
        return p

    def heading(text: str):
        p = paragraph(text, r.HEADING_FONT, 16)
        p.paragraph_format.keep_with_next = True
        p.paragraph_format.space_before = Pt(8)
        return p

    def table(caption: str, head: list[str], rows: list[list[str]], widths: list[float] | None = None):
        cap = paragraph(caption, r.HEADING_FONT, 12, WD_ALIGN_PARAGRAPH.CENTER)
        cap.paragraph_format.keep_with_next = True
        cap.paragraph_format.space_before = Pt(6)
        return r.grid_table(doc, head, rows, widths or r._column_widths(len(head)))

    # 封面
    for _ in range(3):
        paragraph("")
    paragraph(plan.region.name, r.HEADING_FONT, 18, WD_ALIGN_PARAGRAPH.CENTER)
    title = paragraph(f"{plan.system}巡检报告", r.HEADING_FONT, 26, WD_ALIGN_PARAGRAPH.CENTER)
    title.paragraph_format.line_spacing = Pt(40)
    title.paragraph_format.space_after = Pt(40)
    for label, value in (
        ("巡检计划", plan.name),
        ("应巡检时间", _local(run.slot)),
        ("完成时间", _local(run.finished_at) if run.finished_at else "未完成"),
        ("合同名称", contract),
        ("报送单位", issuer),
    ):
        p = paragraph(f"{label}：{value}", size=14)
        p.paragraph_format.left_indent = Cm(3)
    paragraph("").add_run().add_break(WD_BREAK.PAGE)

    # 一、巡检范围
    heading("一、巡检范围")
    paragraph(
        f"本次巡检为“{plan.name}”（{plan.region.name}·{plan.system}）在 {_local(run.slot)} 的到期巡检，"
        f"共 {len(items)} 个巡检项，其中自动巡检 {sum(i.automated for i in items)} 项、"
        f"人工检查 {sum(not i.automated for i in items)} 项；完成时限为 {_local(run.deadline)}。",
        indent=True,
    )
    scope_rows = []
    for n, item in enumerate(items, 1):
        freq = item.plan_item.frequency_label() if item.plan_item else "—"
        scope_rows.append([str(n), item.name, KIND_LABELS.get(item.kind, item.kind), freq])
    table("表1　巡检项与频次", ["序号", "巡检项", "方式", "频次"], scope_rows, [14, 52, 26, 64])

    # 二、巡检结果
    heading("二、巡检结果")
    ok = sum(i.result == "ok" for i in items)
    bad = [i for i in items if i.result == "abnormal"]
    paragraph(
        f"正常 {ok} 项，异常 {len(bad)} 项，未检查 {len(items) - ok - len(bad)} 项。"
        + ("异常项：" + "、".join(i.name for i in bad) + "。" if bad else ""),
        indent=True,
    )
    result_rows = [
        [
            str(n),
            item.name,
            RESULT_TEXT.get(item.result, item.result),
            (item.notes or "—")[:120] + (f"（工单 {item.ticket.number}）" if item.ticket_id else ""),
        ]
        for n, item in enumerate(items, 1)
    ]
    table("表2　各巡检项结果", ["序号", "巡检项", "结果", "说明"], result_rows, [14, 46, 18, 78])

    # 三、明细与证据
    heading("三、检查明细与证据")
    tables = 2
    for n, item in enumerate(items, 1):
        who = (
            item.checked_by.get_full_name() or item.checked_by.username if item.checked_by_id else "系统自动"
        )
        p = paragraph(f"（{n}）{item.name}：{RESULT_TEXT.get(item.result, item.result)}", r.HEADING_FONT, 14)
        p.paragraph_format.keep_with_next = True
        paragraph(
            f"检查方式：{KIND_LABELS.get(item.kind, item.kind)}；检查人：{who}；检查时间：{_local(item.checked_at)}。",
            indent=True,
        )
        if item.notes:
            paragraph(f"说明：{item.notes}", indent=True)
        head, rows = evidence_rows(item)
        if rows:
            tables += 1
            table(f"表{tables}　{item.name}的证据", head, rows)
        for shot in item.shots.all():
            if shot.name.lower().rsplit(".", 1)[-1] not in IMAGE_TYPES:
                paragraph(f"附件：{shot.name}", size=12, indent=True)
                continue
            try:
                with shot.file.open("rb") as fh:
                    data = fh.read()
                picture = doc.add_paragraph()
                picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
                picture.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
                picture.paragraph_format.keep_with_next = True
                picture.add_run().add_picture(io.BytesIO(data), width=Cm(12))
                paragraph(f"截图：{shot.name}", size=12, align=WD_ALIGN_PARAGRAPH.CENTER)
            except Exception:  # a picture Word cannot embed is named instead
                paragraph(f"截图：{shot.name}（无法嵌入）", size=12, indent=True)

    # 四、趋势
    heading("四、近期趋势")
    caption, labels, values, unit = chart_series(run)
    picture = doc.add_paragraph()
    picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
    picture.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    picture.paragraph_format.keep_with_next = True
    picture.add_run().add_picture(io.BytesIO(r._chart(labels, values, "", unit)), width=Cm(15))
    paragraph(f"图1　{caption}", size=12, align=WD_ALIGN_PARAGRAPH.CENTER)

    # 五、结论
    heading("五、巡检结论")
    if run.conclusion:
        conclusion = run.conclusion
    elif bad:
        conclusion = f"本次巡检发现 {len(bad)} 项异常（{'、'.join(i.name for i in bad)}），已按流程登记处理。"
    elif run.status == Run.Status.DONE:
        conclusion = "本次巡检各项均正常，系统运行平稳。"
    else:
        conclusion = "本次巡检尚未完成。"
    for line in conclusion.splitlines() or [conclusion]:
        paragraph(line, indent=True)

    # 六、签字
    heading("六、签字确认")
    sign_rows = [["巡检人", "", "日期", ""], ["复核人", "", "日期", ""], ["财政部门确认", "", "日期", ""]]
    tbl = doc.add_table(rows=3, cols=4)
    tbl.style = "Table Grid"
    tbl.alignment = WD_TABLE_ALIGNMENT.CENTER
    for n, (row, values) in enumerate(zip(tbl.rows, sign_rows, strict=True)):
        row.height = Mm(14)
        for cell, text, width in zip(row.cells, values, (36, 54, 20, 46), strict=True):
            cell.width = Mm(width)
            cell.paragraphs[0].paragraph_format.keep_with_next = (
                n < len(sign_rows) - 1
            )  # the lines stay together
            r._fonts(cell.paragraphs[0].add_run(text), r.BODY_FONT, 12)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def file_name(run: Run) -> str:
    return f"巡检报告-{run.plan.pk}-{timezone.localtime(run.slot):%Y%m%d-%H%M}.docx"


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
