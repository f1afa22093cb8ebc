"""The monthly O&M report 运维月报 as a Word document: KPIs against the contract, breaches, satisfaction, complaints,
problem distribution, with charts drawn by matplotlib in a CJK font."""

from __future__ import annotations

import io
from functools import cache

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from caiwei.web.templatetags.caiwei import percent

from .kpi import monthly_kpis

FONT = "Noto Sans CJK SC"


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
    ax.set_title(title)
    ax.set_ylabel(unit)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _table(doc, header: list[str], rows: list[list[str]]) -> None:
    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = str(text)


def _ok(value: float | None, target: float) -> str:
    return "无数据" if value is None else ("达标" if value >= target else "未达标")


def monthly_report(user, month: str | None = None) -> tuple[str, bytes]:
    """(file name, .docx bytes) for the month, over the regions ``user`` sees."""
    k = monthly_kpis(user, month)
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(10.5)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    for section in doc.sections:
        section.left_margin = section.right_margin = Cm(2.2)
    year, mon = k["month"].split("-")
    title = doc.add_heading(f"运维月报（{year}年{int(mon)}月）", level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    hotline = k["hotline"]
    doc.add_heading("一、总体情况", level=1)
    doc.add_paragraph(
        f"本月受理工单 {k['tickets']} 张，月末未办结 {k['open']} 张；热线来电 {hotline['calls']} 个，接通 {hotline['answered']} 个，"
        f"未接 {hotline['missed']} 个，其中按时回拨 {hotline['callback_in_time']} 个；咨询类工单 {k['consultations']} 张。"
    )
    doc.add_heading("二、合同考核指标", level=1)
    _table(
        doc,
        ["指标", "合同要求", "本月实际", "结论"],
        [
            ["热线接通率", "≥ 95%", percent(hotline["answer_rate"]), _ok(hotline["answer_rate"], 0.95)],
            [
                "未接来电当日回拨率",
                "100%",
                percent(hotline["callback_rate"]),
                _ok(hotline["callback_rate"], 1.0),
            ],
            ["首次响应及时率", "100%", percent(k["first_response_rate"]), _ok(k["first_response_rate"], 1.0)],
            [
                "咨询当日办结率",
                "100%",
                percent(k["same_day_closure_rate"]),
                _ok(k["same_day_closure_rate"], 1.0),
            ],
            ["用户满意率", "≥ 95%", percent(k["satisfaction"]), _ok(k["satisfaction"], 0.95)],
        ],
    )
    doc.add_heading("三、服务时限超时情况", level=1)
    _table(
        doc,
        ["严重程度", "首次响应超时", "解决超时"],
        [[b["severity"], b["first_response"], b["resolution"]] for b in k["breaches"]],
    )
    doc.add_heading("四、满意度（按区划）", level=1)
    regions = k["satisfaction_by_region"]
    if regions:
        _table(
            doc,
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
                for r in regions
            ],
        )
        doc.add_picture(
            io.BytesIO(
                _chart(
                    [r["region"] for r in regions],
                    [r["rate"] * 100 for r in regions],
                    "各区划满意率",
                    "%",
                    90,
                )
            ),
            width=Cm(15),
        )
    else:
        doc.add_paragraph("本月无满意度评价。")
    if k["satisfaction_by_agent"]:
        _table(
            doc,
            ["处理人", "评价数", "满意数", "满意率"],
            [
                [a["agent"], a["count"], a["satisfied"], percent(a["rate"])]
                for a in k["satisfaction_by_agent"]
            ],
        )
    doc.add_heading("五、投诉", level=1)
    if k["complaints"]:
        _table(
            doc,
            ["区划", "本年有效投诉", "是否达到违约线（3 次）"],
            [[c["region"], c["valid"], "是" if c["breach"] else "否"] for c in k["complaints"]],
        )
    else:
        doc.add_paragraph("本年无有效投诉。")
    doc.add_heading("六、问题分布", level=1)
    systems = k["top_systems"]
    if systems:
        _table(doc, ["系统", "工单数"], [[name, count] for name, count in systems])
        doc.add_picture(
            io.BytesIO(_chart([n for n, _ in systems], [c for _, c in systems], "问题最多的系统", "张")),
            width=Cm(15),
        )
        _table(doc, ["类型", "工单数"], [[name, count] for name, count in k["top_types"]])
    else:
        doc.add_paragraph("本月无工单。")
    buffer = io.BytesIO()
    doc.save(buffer)
    return f"运维月报-{k['month']}.docx", buffer.getvalue()
