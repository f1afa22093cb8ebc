"""恢复报告: the formal report of a DR drill in Word, in the style of the monthly report (desk/report.py): A4, GB/T
9704 margins, 仿宋 body and 黑体 headings on the East Asian runs, the page number “— 1 —”, table header rows
repeated, sign-off lines at the end."""

from __future__ import annotations

import io
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from caiwei.desk.report import (
    BODY_FONT,
    HEADING_FONT,
    LATIN_FONT,
    MARGINS_MM,
    _bottom_border,
    _fonts,
    _page_field,
    grid_table,
)

from .models_backups import DrillRecord


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} 秒"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} 分 {rest} 秒"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} 小时 {minutes} 分"
    days, hours = divmod(hours, 24)
    return f"{days} 天 {hours} 小时"


def goal_text(seconds: int) -> str:
    """A goal as set: whole hours or minutes."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 60} 分钟"


def size_text(n: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} 字节"


def local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def content(drill: DrillRecord) -> dict:
    """The report's words and tables, once (the page shows the same)."""
    database, backup = drill.database, drill.backup
    target = database.target
    rto_goal, rpo_goal = drill.rto_goal_minutes * 60, drill.rpo_goal_hours * 3600
    counts_bad = [c for c in drill.counts if not c["ok"]]
    check_errors = [c for c in drill.checks if c["error"]]
    found = [c for c in drill.checks if c["count"]]
    rto_ok, rpo_ok = drill.rto_ok, drill.rpo_ok
    if drill.status == DrillRecord.Status.PASSED:
        verdict = "本次演练恢复成功：备份文件校验一致，恢复出的各表行数与备份时记录的一致。" + (
            f"另有 {len(check_errors)} 条数据检查规则未能在恢复出的库上执行（多为该库没有规则所需的表），见表中说明。"
            if check_errors
            else ("数据检查规则全部正常执行。" if drill.checks else "")
        )
    else:
        reasons = []
        if drill.error:
            reasons.append(drill.error)
        if counts_bad:
            reasons.append(
                f"{len(counts_bad)} 张表行数与备份时不一致（{'、'.join(c['table'] for c in counts_bad)}）"
            )
        verdict = "本次演练未通过：" + "；".join(reasons or ["见各步骤记录"]) + "。"
    goals = []
    if rto_ok is not None:
        goals.append(
            f"恢复时间 {duration(drill.rto_seconds)}，{'满足' if rto_ok else '未满足'}目标（{goal_text(rto_goal)}）"
        )
    if rpo_ok is not None:
        goals.append(
            f"数据丢失窗口 {duration(drill.rpo_seconds)}，{'满足' if rpo_ok else '未满足'}目标（{goal_text(rpo_goal)}）"
        )
    return {
        "title": "灾难恢复演练恢复报告",
        "meta": [
            ("运维对象", f"{target.name}（{target.region.name}，{target.system}）"),
            ("演练编号", f"第 {drill.pk} 号"),
            ("演练时间", f"{local(drill.started_at)} 至 {local(drill.finished_at)}"),
            ("演练人", str(drill.performed_by or "后台任务")),
        ],
        "purpose": (
            f"按运维合同关于数据库备份与灾难恢复的要求，验证{target.name}“{database.name}”的备份能否在规定时间内完整恢复，"
            "恢复出的数据是否与备份时一致、能否支撑业务规则检查，并测定恢复时间（RTO）与数据丢失窗口（RPO）。"
        ),
        "scope": (
            f"数据库：{database}（{database.get_dialect_display()}）；恢复到独立的临时库，不触及生产库；"
            f"核对的表 {len(drill.counts)} 张；运行的数据检查规则包：{drill.packs}。"
        ),
        "backup": [
            ["备份编号", f"第 {backup.pk} 号" if backup else "—"],
            ["备份文件", backup.file_name if backup else "—"],
            ["SHA-256", backup.sha256 if backup else "—"],
            ["文件大小", size_text(backup.size) if backup else "—"],
            ["备份开始", local(backup.started_at) if backup else "—"],
            ["备份完成", local(backup.finished_at) if backup else "—"],
            ["备份工具", backup.tool_version if backup else "—"],
            ["行数来源", backup.counts_source if backup else "—"],
        ],
        "steps": [
            [
                str(n),
                s["name"],
                local(_parse(s["started_at"])),
                duration(s["seconds"]),
                "成功" if s["ok"] else "失败",
                s["note"],
            ]
            for n, s in enumerate(drill.steps, 1)
        ],
        "counts": [
            [c["table"], str(c["recorded"]), str(c["restored"]), "一致" if c["ok"] else "不一致"]
            for c in drill.counts
        ],
        "checks": [
            [
                c["id"],
                c["title"],
                "出错" if c["error"] else str(c["count"]),
                c["error"][:80] if c["error"] else ("发现问题" if c["count"] else "无问题"),
            ]
            for c in drill.checks
            if c["count"] or c["error"]  # the rules with nothing to say are counted, not listed
        ],
        "checks_summary": (
            f"在恢复出的库上运行规则 {len(drill.checks)} 条：发现问题 {len(found)} 条，执行出错 {len(check_errors)} 条，"
            f"其余 {len(drill.checks) - len(found) - len(check_errors)} 条无问题（下表只列出发现问题或出错的规则）。"
            "发现问题的规则反映的是备份时点的数据状况，与生产库的检查结果一致即说明数据恢复完整。"
            if drill.checks
            else "本次未运行数据检查。"
        ),
        "goals": [
            ["恢复时间（RTO）", goal_text(rto_goal), duration(drill.rto_seconds), _ok(rto_ok)],
            ["恢复点（RPO）", goal_text(rpo_goal), duration(drill.rpo_seconds), _ok(rpo_ok)],
        ],
        "goals_text": "；".join(goals) + "。" if goals else "未能测定恢复时间。",
        "verdict": verdict,
        "issued": timezone.localtime(drill.finished_at or timezone.now())
        .strftime("%Y年%m月%d日")
        .replace("年0", "年")
        .replace("月0", "月"),
    }


def _ok(value) -> str:
    return "—" if value is None else ("达到" if value else "未达到")


def _parse(text: str):
    from datetime import datetime

    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def render_docx(drill: DrillRecord) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt

    c = content(drill)
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = LATIN_FONT
    normal.font.size = Pt(14)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    normal.paragraph_format.line_spacing = Pt(26)
    normal.paragraph_format.space_after = Pt(0)
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    section.header_distance, section.footer_distance = Mm(15), Mm(20)
    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    header.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    _fonts(header.add_run(f"{drill.database.target.name} · 灾难恢复演练"), BODY_FONT, 10.5)
    _bottom_border(header)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    _page_field(footer)
    full = 210 - MARGINS_MM["left"] - MARGINS_MM["right"]

    def paragraph(text: str, font: str = BODY_FONT, size: float = 14, align=None, indent: bool = False):
        p = doc.add_paragraph()
        if align is not None:
            p.alignment = align
        if indent:
            p.paragraph_format.first_line_indent = Pt(size * 2)
        _fonts(p.add_run(text), font, size)
        return p

    def heading(text: str):
        p = paragraph(text, HEADING_FONT, 15)
        p.paragraph_format.keep_with_next = True
        p.paragraph_format.space_before = Pt(6)

    tables = [0]

    def table(caption: str, head: list[str], rows: list[list[str]], widths: list[float]):
        tables[0] += 1
        cap = paragraph(f"表{tables[0]}　{caption}", HEADING_FONT, 11, WD_ALIGN_PARAGRAPH.CENTER)
        cap.paragraph_format.keep_with_next = True
        grid_table(doc, head, rows or [["—"] * len(head)], [full * w / sum(widths) for w in widths])

    title = paragraph(c["title"], HEADING_FONT, 22, WD_ALIGN_PARAGRAPH.CENTER)
    title.paragraph_format.line_spacing = Pt(36)
    title.paragraph_format.space_after = Pt(12)
    for label, value in c["meta"]:
        paragraph(f"{label}：{value}", size=12)
    heading("一、演练目的")
    paragraph(c["purpose"], indent=True)
    heading("二、演练范围")
    paragraph(c["scope"], indent=True)
    heading("三、使用的备份")
    table("备份文件", ["项目", "内容"], c["backup"], [1, 3.4])
    heading("四、演练步骤")
    table(
        "步骤与用时",
        ["序号", "步骤", "开始时间", "用时", "结果", "说明"],
        c["steps"],
        [0.7, 2, 2, 1, 0.8, 2.6],
    )
    heading("五、数据核对")
    table("各表行数核对", ["表", "备份时行数", "恢复后行数", "结论"], c["counts"], [2.4, 1.2, 1.2, 0.8])
    heading("六、数据检查")
    paragraph(c["checks_summary"], indent=True)
    if c["checks"]:
        table(
            "在恢复出的库上运行的数据检查",
            ["规则", "名称", "问题条数", "说明"],
            c["checks"],
            [1.1, 3, 0.9, 1.6],
        )
    heading("七、恢复时间与恢复点")
    table("恢复目标达成情况", ["指标", "目标", "实测", "结论"], c["goals"], [1.6, 1.2, 1.2, 0.8])
    paragraph(c["goals_text"], indent=True)
    heading("八、结论")
    paragraph(c["verdict"], indent=True)
    # the sign-off lines and the date stay together on one page
    lines = [
        paragraph("演练负责人（签字）：＿＿＿＿＿＿＿＿　　日期：＿＿＿＿＿＿"),
        paragraph("复核人（签字）：＿＿＿＿＿＿＿＿＿＿　　日期：＿＿＿＿＿＿"),
        paragraph("财政部门确认（签章）：＿＿＿＿＿＿＿＿　日期：＿＿＿＿＿＿"),
    ]
    lines[0].paragraph_format.space_before = Pt(28)
    for line in lines:
        line.paragraph_format.keep_with_next = True
    tail = paragraph(c["issued"], align=WD_ALIGN_PARAGRAPH.RIGHT)
    tail.paragraph_format.space_before = Pt(12)
    tail.paragraph_format.right_indent = Pt(28)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def report_dir() -> Path:
    return Path(settings.VAR_DIR) / "backups" / "reports"


def write_report(drill: DrillRecord) -> Path:
    folder = report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"drill-{drill.pk}.docx"
    path.write_bytes(render_docx(drill))
    return path


def report_name(drill: DrillRecord) -> str:
    day = timezone.localtime(drill.started_at).strftime("%Y%m%d")
    return f"恢复报告-{drill.database.target.name}-{day}-{drill.pk}.docx"
