"""Statements of a reconciliation 对账单与余额调节表, per bank and day or month, from a finished run.

When a run executes, ``compute_totals`` reads the DuckDB tables once (while the engine's tables are still there) and
keeps on the run, per bank and day: the bank's lines (paid, returned or failed), the book's vouchers, what matched,
what is in transit, and the reconciling items of every break with the days its vouchers and lines fall on. The
statements are built from that alone, so a run's statement reads the same however many runs come after it (a signed
statement must not move).

The 余额调节表 is the standard Chinese form turned to payments: the bank's statement total paid against the book's
total of payment vouchers, each side plus what the other side has and it has not::

    我方支付凭证合计 + 银行已付、我方未付      = 调节后（我方）
    银行对账单支付合计 + 我方已付、银行未付    = 调节后（银行）

The items are the breaks by class (a break whose vouchers outweigh its lines in the period goes to the bank side,
the others to the book side), the vouchers in transit, matched payments whose bank line falls in another period
(期后到账 / 上期凭证本期到账), payments returned by the bank whose refund is booked, and the difference left inside the
amount tolerance. The two totals are computed apart from the items (straight sums over the bank lines and the
vouchers), so the adjusted sides are equal only when every difference is explained; when they are not, the
statement says so and by how much.
"""

# ruff: noqa: S608  (the only values written into SQL are fixed names; the data go in as parameters)

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from .engine import BREAKS

VERSION = 1
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
RETURNED = "status IN ('退票', '失败')"
# What each day of a bank keeps, in this order (counts and amounts; amounts as text with two decimals).
DAY_FIELDS = (
    "bank_count",  # bank lines of the day, whatever their status
    "bank_amount",
    "failed_count",  # of which 退票 or 失败: not paid
    "failed_amount",
    "book_count",  # payment vouchers of the day
    "book_amount",
    "refunded_count",  # of which a 退款 is booked
    "refunded_amount",
    "matched_count",  # vouchers matched and not a break (by voucher date)
    "matched_amount",
    "transit_count",  # vouchers not at the bank yet, still inside the window (在途)
    "transit_amount",
    "returned_count",  # matched vouchers the bank returned and whose refund is booked (退票已退款)
    "returned_amount",
    "tolerance_amount",  # voucher minus paid lines of matched vouchers (inside the amount tolerance)
    "orphan_count",  # bank lines neither matched nor named by a break (the engine left them out)
    "orphan_amount",
)
AMOUNT_FIELDS = frozenset(f for f in DAY_FIELDS if f.endswith("_amount"))
CLEARING = ("clearing_amount", "clearing_count", "clearing_only", "clearing_missing")


def money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def fmt(value: Decimal | None) -> str:
    """An amount with two decimals and thousands separators: 1,234.50."""
    return "" if value is None else f"{money(value):,.2f}"


def _text(value) -> str:
    return f"{money(value):.2f}"


# --- at run time: the totals from DuckDB ---------------------------------------------------------------------------


def compute_totals(con, found: list[dict], start: date, end: date) -> dict:
    """Per bank and day of [``start``, ``end``] the totals above, the timing of matched payments across days, and the
    reconciling items of the breaks ``found`` (the engine's breaks, each with its ``fingerprint``); also sets
    ``bank_code`` and ``day`` on each break (where the difference belongs). Reads the engine's tables ``bank``,
    ``book`` and its pairing tables ``by_serial``, ``paired`` and ``clr`` of the same connection."""
    # Each voucher and line belongs to one item: the keyed classes first, a 我方重复 takes the vouchers left.
    item_vou: dict[str, int] = {}
    item_line: dict[int, int] = {}
    order = sorted(range(len(found)), key=lambda i: found[i]["kind"] == "book_duplicate")
    for i in order:
        b = found[i]
        if b["kind"] in CLEARING:
            continue
        for v in b["vouchers"]:
            item_vou.setdefault(v, i)
        for line_id in b["lines"]:
            item_line.setdefault(int(line_id), i)
    run = con.execute
    run("CREATE OR REPLACE TEMP TABLE st_item_vou (item INTEGER, vou_no VARCHAR)")
    run("CREATE OR REPLACE TEMP TABLE st_item_line (item INTEGER, line_id BIGINT)")
    if item_vou:
        run(
            "INSERT INTO st_item_vou SELECT unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
            [list(item_vou.values()), list(item_vou)],
        )
    if item_line:
        run(
            "INSERT INTO st_item_line SELECT unnest(?::INTEGER[]), unnest(?::BIGINT[])",
            [list(item_line.values()), list(item_line)],
        )
    # Which voucher each bank line pays: its 支付凭证号, else the engine's pairing by serial or by attributes.
    run(
        """
        CREATE OR REPLACE TEMP TABLE st_assoc AS
        SELECT b.line_id, b.pay_cert_no AS vou_no FROM bank b SEMI JOIN book v ON v.vou_no = b.pay_cert_no
        UNION ALL SELECT line_id, vou_no FROM by_serial
        UNION ALL SELECT line_id, vou_no FROM paired;
        """
    )
    run(
        f"""
        CREATE OR REPLACE TEMP TABLE st_line AS
        SELECT l.line_id, l.bank_code, l.pay_date, l.amount, NOT coalesce(l.{RETURNED}, FALSE) AS ok,
               coalesce(il.item, iv.item) AS item, a.vou_no
        FROM bank l
        LEFT JOIN st_item_line il ON il.line_id = l.line_id
        LEFT JOIN st_assoc a ON a.line_id = l.line_id
        LEFT JOIN st_item_vou iv ON iv.vou_no = a.vou_no;
        CREATE OR REPLACE TEMP TABLE st_grp AS
        SELECT v.vou_no, v.bank_code, v.vou_date, v.amount, coalesce(v.refunded, FALSE) AS refunded,
               count(l.line_id) AS n_lines, count(l.line_id) FILTER (WHERE l.ok) AS n_ok,
               coalesce(sum(l.amount) FILTER (WHERE l.ok), 0) AS ok_amount
        FROM book v ANTI JOIN st_item_vou i ON i.vou_no = v.vou_no
        LEFT JOIN st_line l ON l.vou_no = v.vou_no AND l.item IS NULL
        GROUP BY ALL;
        """
    )
    banks: dict[str, dict] = defaultdict(lambda: {"days": {}, "lags": [], "items": [], "clearing": []})

    def day_row(bank: str, day: date) -> list:
        days = banks[bank]["days"]
        key = day.isoformat()
        if key not in days:
            days[key] = [ZERO if f in AMOUNT_FIELDS else 0 for f in DAY_FIELDS]
        return days[key]

    def put(rows, names) -> None:
        index = [DAY_FIELDS.index(n) for n in names]
        for bank, day, *values in rows:
            row = day_row(bank or "", day)
            for i, value in zip(index, values, strict=True):
                row[i] = money(value) if DAY_FIELDS[i] in AMOUNT_FIELDS else int(value or 0)

    window = [start, end]
    put(
        run(
            """
            SELECT bank_code, pay_date, count(*), sum(amount), count(*) FILTER (WHERE NOT ok),
                   sum(amount) FILTER (WHERE NOT ok),
                   count(*) FILTER (WHERE item IS NULL AND vou_no IS NULL),
                   sum(amount) FILTER (WHERE item IS NULL AND vou_no IS NULL AND ok)
            FROM st_line WHERE pay_date BETWEEN ? AND ? GROUP BY ALL
            """,
            window,
        ).fetchall(),
        (
            "bank_count",
            "bank_amount",
            "failed_count",
            "failed_amount",
            "orphan_count",
            "orphan_amount",
        ),
    )
    put(
        run(
            """
            SELECT bank_code, vou_date, count(*), sum(amount), count(*) FILTER (WHERE refunded),
                   sum(amount) FILTER (WHERE refunded)
            FROM book WHERE vou_date BETWEEN ? AND ? GROUP BY ALL
            """,
            window,
        ).fetchall(),
        ("book_count", "book_amount", "refunded_count", "refunded_amount"),
    )
    put(
        run(
            """
            SELECT bank_code, vou_date,
                   count(*) FILTER (WHERE n_lines > 0), sum(amount) FILTER (WHERE n_lines > 0),
                   count(*) FILTER (WHERE n_lines = 0), sum(amount) FILTER (WHERE n_lines = 0),
                   count(*) FILTER (WHERE n_lines > 0 AND n_ok = 0 AND refunded),
                   sum(amount) FILTER (WHERE n_lines > 0 AND n_ok = 0 AND refunded),
                   sum(amount - ok_amount) FILTER (WHERE n_lines > 0 AND NOT (n_ok = 0 AND refunded))
            FROM st_grp WHERE vou_date BETWEEN ? AND ? GROUP BY ALL
            """,
            window,
        ).fetchall(),
        (
            "matched_count",
            "matched_amount",
            "transit_count",
            "transit_amount",
            "returned_count",
            "returned_amount",
            "tolerance_amount",
        ),
    )
    for bank, vou_day, pay_day, count, amount in run(
        """
        SELECT g.bank_code, g.vou_date, l.pay_date, count(*), sum(l.amount)
        FROM st_grp g JOIN st_line l ON l.vou_no = g.vou_no AND l.item IS NULL AND l.ok
        WHERE l.pay_date <> g.vou_date AND (g.vou_date BETWEEN ? AND ? OR l.pay_date BETWEEN ? AND ?)
        GROUP BY ALL ORDER BY ALL
        """,
        [start, end, start, end],
    ).fetchall():
        banks[bank or ""]["lags"].append(
            [vou_day.isoformat(), pay_day.isoformat(), int(count), _text(amount)]
        )

    # The breaks: what each puts on which bank and day, and where it belongs.
    book_side: dict[tuple[int, str], dict] = defaultdict(dict)
    bank_side: dict[tuple[int, str], dict] = defaultdict(dict)
    for item, bank, day, count, amount in run(
        "SELECT i.item, v.bank_code, v.vou_date, count(*), sum(v.amount) "
        "FROM st_item_vou i JOIN book v ON v.vou_no = i.vou_no GROUP BY ALL"
    ).fetchall():
        book_side[(item, bank or "")][day.isoformat()] = [int(count), _text(amount)]
    for item, bank, day, count, amount, lines in run(
        "SELECT item, bank_code, pay_date, count(*) FILTER (WHERE ok), sum(amount) FILTER (WHERE ok), count(*) "
        "FROM st_line WHERE item IS NOT NULL GROUP BY ALL"
    ).fetchall():
        bank_side[(item, bank or "")][day.isoformat()] = [int(count), _text(amount), int(lines)]
    first, last = start.isoformat(), end.isoformat()
    for item, bank in sorted(set(book_side) | set(bank_side)):
        b = found[item]
        days = set(book_side.get((item, bank), {})) | set(bank_side.get((item, bank), {}))
        if not any(first <= d <= last for d in days):
            continue
        banks[bank]["items"].append(
            {
                "kind": b["kind"],
                "fingerprint": b.get("fingerprint", ""),
                "vouchers": list(b["vouchers"])[:20],
                "serials": sorted(
                    {x.get("serial", "") for x in b.get("line_details", []) if x.get("serial")}
                )[:20],
                "note": b.get("note") or "",
                "book": book_side.get((item, bank), {}),
                "bank": bank_side.get((item, bank), {}),
            }
        )
    # Where each break belongs: its earliest voucher's bank and day, else its earliest line's.
    for sides in (bank_side, book_side):  # the book side last: it decides when there is one
        placed: dict[int, tuple[str, str]] = {}
        for (item, bank), days in sides.items():
            day = min(days)
            if item not in placed or day < placed[item][1]:
                placed[item] = (bank, day)
        for item, (bank, day) in placed.items():
            found[item]["bank_code"], found[item]["day"] = bank, date.fromisoformat(day)
    clearing = {}
    try:
        clearing = {
            (kind, note): (bank, day)
            for kind, note, bank, day in run("SELECT kind, note, bank_code, lqd_date FROM clr").fetchall()
        }
    except Exception:  # noqa: BLE001  (no clearing file: the engine made no clr table in some versions)
        clearing = {}
    for b in found:
        if b["kind"] not in CLEARING:
            continue
        bank, day = clearing.get((b["kind"], b.get("note") or ""), ("", None))
        if day is None:
            continue
        b["bank_code"], b["day"] = bank or "", day
        if first[:7] <= day.isoformat()[:7] <= last[:7]:
            banks[bank or ""]["clearing"].append(
                {
                    "kind": b["kind"],
                    "fingerprint": b.get("fingerprint", ""),
                    "month": day.isoformat()[:7],
                    "book_amount": None if b["book_amount"] is None else _text(b["book_amount"]),
                    "bank_amount": None if b["bank_amount"] is None else _text(b["bank_amount"]),
                    "note": b.get("note") or "",
                }
            )
    for name in ("st_item_vou", "st_item_line", "st_assoc", "st_line", "st_grp"):
        run(f"DROP TABLE IF EXISTS {name}")
    out = {}
    for bank, data in sorted(banks.items()):
        data["days"] = {
            day: [_text(v) if f in AMOUNT_FIELDS else v for f, v in zip(DAY_FIELDS, row, strict=True)]
            for day, row in sorted(data["days"].items())
        }
        out[bank] = data
    return {"version": VERSION, "start": first, "end": last, "fields": list(DAY_FIELDS), "banks": out}


# --- names --------------------------------------------------------------------------------------------------------


def bank_name(code: str) -> str:
    """The bank's name: a sandbox bank's, else the name of a file layout kept for that bank code, else the code."""
    from caiwei.sandbox.codes import BANKS

    for bank, name, _ in BANKS:
        if bank == code:
            return name
    from .models import BankFormat

    found = BankFormat.objects.filter(bank_code=code).values_list("name", flat=True).first()
    return found or code or "（未知银行）"


def bank_label(code: str) -> str:
    name = bank_name(code)
    return f"{name}（{code}）" if name != code else code


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def cn_month(day: date) -> str:
    return f"{day.year}年{day.month}月"


# --- periods ------------------------------------------------------------------------------------------------------


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@dataclass(frozen=True)
class Period:
    kind: str  # day | month
    start: date
    end: date

    @property
    def label(self) -> str:
        return cn_date(self.start) if self.kind == "day" else cn_month(self.start)

    @property
    def key(self) -> str:
        return self.start.isoformat() if self.kind == "day" else self.start.isoformat()[:7]


class StatementError(ValueError):
    """A statement that cannot be made (no totals, a period outside the run, an unknown bank)."""


def parse_period(kind: str, value: str | date | None, run) -> Period:
    """``kind`` day or month; ``value`` YYYY-MM-DD (day) or YYYY-MM (month), by default the run's last day or
    month. The period must lie within the run's period (a month may be cut by it)."""
    if kind not in ("day", "month"):
        raise StatementError("期间类型应为 day（日）或 month（月）")
    if value in (None, ""):
        value = run.period_end
    try:
        if isinstance(value, date):
            day = value
        elif kind == "month" and len(value) == 7:
            day = date.fromisoformat(f"{value}-01")
        else:
            day = date.fromisoformat(value)
    except ValueError as exc:
        raise StatementError(f"期间“{value}”格式应为 {'YYYY-MM-DD' if kind == 'day' else 'YYYY-MM'}") from exc
    start, end = (day, day) if kind == "day" else (day.replace(day=1), month_end(day))
    if end < run.period_start or start > run.period_end:
        raise StatementError(
            f"{cn_date(start) if kind == 'day' else cn_month(start)}不在第 {run.pk} 次对账的期间"
            f"（{cn_date(run.period_start)}至{cn_date(run.period_end)}）内"
        )
    return Period(kind, start, end)


def months_of(run) -> list[date]:
    """The first days of the months the run's period touches."""
    out, day = [], run.period_start.replace(day=1)
    while day <= run.period_end:
        out.append(day)
        day = month_end(day) + timedelta(days=1)
    return out


def banks_of(run) -> list[str]:
    return sorted(code for code in (run.totals or {}).get("banks", {}) if code)


# --- the statement -------------------------------------------------------------------------------------------------


@dataclass
class Adjustment:
    """One line of the 余额调节表: a class of reconciling items on one side."""

    code: str
    label: str
    side: str  # book: 银行已付、我方未付 (added to the book side) | bank: 我方已付、银行未付 (added to the bank side)
    count: int = 0
    amount: Decimal = ZERO


@dataclass
class BreakRow:
    kind: str
    label: str
    vouchers: list[str]
    serials: list[str]
    day: str
    book_amount: Decimal
    bank_amount: Decimal
    state: str = ""
    owner: str = ""
    break_id: int | None = None


@dataclass
class Statement:
    run_id: int
    region: str
    region_code: str
    bank_code: str
    bank: str
    period: Period
    as_of: date
    run_period: str
    generated: datetime
    days: list[dict]
    opening_bank: Decimal
    opening_book: Decimal
    bank_paid: Decimal  # 银行对账单支付合计 of the period
    book_paid: Decimal  # 我方支付凭证合计 of the period
    totals: dict
    adjustments: list[Adjustment]
    breaks: list[BreakRow]
    clearing: list[dict]
    cut: str = ""  # said when the run's period cuts the month
    notes: list[str] = field(default_factory=list)

    @property
    def closing_bank(self) -> Decimal:
        return self.opening_bank + self.bank_paid

    @property
    def closing_book(self) -> Decimal:
        return self.opening_book + self.book_paid

    def side(self, side: str) -> list[Adjustment]:
        return [a for a in self.adjustments if a.side == side and a.amount]

    @property
    def adjusted_bank(self) -> Decimal:
        return self.bank_paid + sum((a.amount for a in self.side("bank")), ZERO)

    @property
    def adjusted_book(self) -> Decimal:
        return self.book_paid + sum((a.amount for a in self.side("book")), ZERO)

    @property
    def difference(self) -> Decimal:
        return self.adjusted_bank - self.adjusted_book

    @property
    def balanced(self) -> bool:
        return self.difference == 0

    @property
    def conclusion(self) -> str:
        if self.balanced:
            return f"调节后余额相等（均为 {fmt(self.adjusted_book)} 元）：银行与我方的差额已全部由所列未达账项和差异解释。"
        return (
            f"调节后余额不相等：银行方 {fmt(self.adjusted_bank)} 元，我方 {fmt(self.adjusted_book)} 元，"
            f"相差 {fmt(abs(self.difference))} 元未能由所列未达账项和差异解释，请核查。"
        )

    @property
    def title_period(self) -> str:
        return self.period.label

    @property
    def file_stem(self) -> str:
        return f"对账单-{self.bank_code}-{self.period.key}-第{self.run_id}次对账"

    def figures(self) -> dict:
        """The figures a signature covers (kept on the sign-off and in the audit chain)."""
        return {
            "run": self.run_id,
            "bank_code": self.bank_code,
            "period": self.period.key,
            "bank_paid": _text(self.bank_paid),
            "book_paid": _text(self.book_paid),
            "adjusted_bank": _text(self.adjusted_bank),
            "adjusted_book": _text(self.adjusted_book),
            "balanced": self.balanced,
            "breaks": len(self.breaks),
            "adjustments": [
                {"code": a.code, "side": a.side, "count": a.count, "amount": _text(a.amount)}
                for a in self.adjustments
                if a.amount
            ],
        }

    def as_dict(self) -> dict:
        return {
            "run": self.run_id,
            "region": {"code": self.region_code, "name": self.region},
            "bank": {"code": self.bank_code, "name": self.bank},
            "period": {
                "kind": self.period.kind,
                "key": self.period.key,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "as_of": self.as_of.isoformat(),
            "generated": self.generated.isoformat(),
            "statement": {
                "opening": {"bank": _text(self.opening_bank), "book": _text(self.opening_book)},
                "period": {"bank": _text(self.bank_paid), "book": _text(self.book_paid)},
                "closing": {"bank": _text(self.closing_bank), "book": _text(self.closing_book)},
                "totals": {k: _text(v) if k in AMOUNT_FIELDS else v for k, v in self.totals.items()},
                "days": [{k: _text(v) if k in AMOUNT_FIELDS else v for k, v in d.items()} for d in self.days],
                "breaks": [
                    {
                        "id": b.break_id,
                        "kind": b.kind,
                        "label": b.label,
                        "vouchers": b.vouchers,
                        "serials": b.serials,
                        "day": b.day,
                        "book_amount": _text(b.book_amount),
                        "bank_amount": _text(b.bank_amount),
                        "state": b.state,
                    }
                    for b in self.breaks
                ],
                "clearing": self.clearing,
            },
            "reconciliation": {
                "book_paid": _text(self.book_paid),
                "bank_paid": _text(self.bank_paid),
                "book_items": [
                    {"code": a.code, "label": a.label, "count": a.count, "amount": _text(a.amount)}
                    for a in self.side("book")
                ],
                "bank_items": [
                    {"code": a.code, "label": a.label, "count": a.count, "amount": _text(a.amount)}
                    for a in self.side("bank")
                ],
                "adjusted_book": _text(self.adjusted_book),
                "adjusted_bank": _text(self.adjusted_bank),
                "balanced": self.balanced,
                "difference": _text(self.difference),
                "conclusion": self.conclusion,
            },
            "notes": self.notes,
        }


def _kind_label(kind: str) -> str:
    return BREAKS.get(kind, kind).split("：")[0]


# The classes of the 调节表 that are not breaks, and each break class: label on the book side (银行已付、我方未付),
# label on the bank side (我方已付、银行未付).
TIMING = {
    "transit": ("在途凭证（我方已支付，尚在到账窗口内）", "bank"),
    "lag_out": ("期后到账（本期凭证，银行于期后支付）", "bank"),
    "lag_in": ("上期凭证本期到账（银行本期支付的为期前凭证）", "book"),
    "returned": ("银行已退票、我方已登记退款", "bank"),
}
SIDE_LABELS = {
    "bank_only": ("仅银行有：银行已支付、我方无对应凭证", "仅银行有"),
    "book_only": ("仅我方有", "仅我方有：凭证已超过到账窗口、银行未支付"),
    "amount": ("金额不符：银行金额大于凭证金额", "金额不符：凭证金额大于银行金额"),
    "date": ("日期超出窗口：银行本期支付、凭证不在本期", "日期超出窗口：凭证在本期、银行未在本期支付"),
    "bank_duplicate": ("银行重复支付", "银行重复（凭证多于银行支付）"),
    "book_duplicate": ("我方重复（银行支付多于凭证）", "我方重复：同一银行流水号登记了多张凭证"),
    "status": ("状态不符（银行支付多于凭证）", "状态不符：银行退票或失败、我方未登记退款"),
}


def build(run, bank_code: str, period: Period, now: datetime | None = None, lookup: bool = True) -> Statement:
    """The statement of ``bank_code`` for ``period`` from ``run``'s stored totals; ``lookup``: with the state and
    owner of each stored break (a query; the figures do not need it)."""
    from .models import ReconBreak

    totals = run.totals or {}
    if totals.get("version") != VERSION:
        raise StatementError(
            f"第 {run.pk} 次对账没有按银行按日的汇总（执行于本功能之前或未完成），请重新对账"
        )
    banks = totals.get("banks", {})
    if bank_code not in banks:
        raise StatementError(f"第 {run.pk} 次对账中没有银行“{bank_code}”的数据")
    data = banks[bank_code]
    fields = totals.get("fields", list(DAY_FIELDS))
    first = max(period.start, run.period_start)
    last = min(period.end, run.period_end)
    lo, hi = first.isoformat(), last.isoformat()

    def row(values) -> dict:
        out = {}
        for name, value in zip(fields, values, strict=True):
            out[name] = money(value) if name in AMOUNT_FIELDS else int(value)
        return out

    all_days = {day: row(values) for day, values in data["days"].items()}
    empty = {f: ZERO if f in AMOUNT_FIELDS else 0 for f in DAY_FIELDS}
    days, sums = [], dict(empty)
    opening_bank = opening_book = ZERO
    for day, values in sorted(all_days.items()):
        if day < lo:
            opening_bank += values["bank_amount"] - values["failed_amount"]
            opening_book += values["book_amount"]
        elif day <= hi:
            days.append({"day": day, **values})
            for k in DAY_FIELDS:
                sums[k] += values[k]
    bank_paid = sums["bank_amount"] - sums["failed_amount"]
    book_paid = sums["book_amount"]
    adjustments: dict[tuple[str, str], Adjustment] = {}

    def add(code: str, label: str, side: str, count: int, amount: Decimal) -> None:
        key = (code, side)
        if key not in adjustments:
            adjustments[key] = Adjustment(code, label, side)
        adjustments[key].count += count
        adjustments[key].amount += amount

    for code, (label, side) in TIMING.items():
        adjustments[(code, side)] = Adjustment(code, label, side)
    add("transit", TIMING["transit"][0], "bank", sums["transit_count"], sums["transit_amount"])
    add("returned", TIMING["returned"][0], "bank", sums["returned_count"], sums["returned_amount"])
    out_n = out_amount = in_n = in_amount = 0
    for vou_day, pay_day, count, amount in data.get("lags", []):
        inside_v, inside_p = lo <= vou_day <= hi, lo <= pay_day <= hi
        if inside_v and not inside_p:
            out_n, out_amount = out_n + count, out_amount + money(amount)
        elif inside_p and not inside_v:
            in_n, in_amount = in_n + count, in_amount + money(amount)
    add("lag_out", TIMING["lag_out"][0], "bank", out_n, money(out_amount))
    add("lag_in", TIMING["lag_in"][0], "book", in_n, money(in_amount))
    tolerance = sums["tolerance_amount"]
    if tolerance > 0:
        add("tolerance", "已相符凭证的容差内金额差（凭证金额大于银行金额）", "bank", 0, tolerance)
    elif tolerance < 0:
        add("tolerance", "已相符凭证的容差内金额差（银行金额大于凭证金额）", "book", 0, -tolerance)
    prints = [i["fingerprint"] for i in data.get("items", []) if i.get("fingerprint")]
    stored = {}
    if lookup and prints:
        for b in (
            ReconBreak.objects.filter(
                region_id=run.region_id,
                database_id=run.database_id,
                fingerprint__in=prints,
                first_run_id__lte=run.pk,
            )
            .select_related("owner")
            .order_by("created_at")
        ):
            stored[b.fingerprint] = b
    break_rows = []
    for item in data.get("items", []):
        book_days = {d: v for d, v in item.get("book", {}).items() if lo <= d <= hi}
        bank_days = {d: v for d, v in item.get("bank", {}).items() if lo <= d <= hi}
        if not book_days and not bank_days:
            continue
        k = sum((money(v[1]) for v in book_days.values()), ZERO)
        b = sum((money(v[1]) for v in bank_days.values()), ZERO)
        kind = item["kind"]
        book_label, bank_label_ = SIDE_LABELS.get(kind, (_kind_label(kind), _kind_label(kind)))
        if k > b:
            add(kind, bank_label_, "bank", 1, k - b)
        elif b > k:
            add(kind, book_label, "book", 1, b - k)
        brk = stored.get(item.get("fingerprint"))
        break_rows.append(
            BreakRow(
                kind=kind,
                label=_kind_label(kind),
                vouchers=item.get("vouchers", []),
                serials=item.get("serials", []),
                day=min([*book_days, *bank_days]),
                book_amount=k,
                bank_amount=b,
                state=brk.get_state_display() if brk else "",
                owner=str(brk.owner) if brk and brk.owner else "",
                break_id=brk.pk if brk else None,
            )
        )
    break_rows.sort(key=lambda r: (r.day, r.kind, r.vouchers, r.serials))
    clearing = [c for c in data.get("clearing", []) if lo[:7] <= c["month"] <= hi[:7]]
    notes = []
    if sums["failed_count"]:
        notes.append(
            f"银行退票或失败的明细 {sums['failed_count']} 笔、{fmt(sums['failed_amount'])} 元未计入银行支付合计。"
        )
    if sums["refunded_count"]:
        notes.append(
            f"凭证中已登记退款的 {sums['refunded_count']} 张、{fmt(sums['refunded_amount'])} 元，按凭证金额计入我方合计。"
        )
    if sums["orphan_count"]:
        notes.append(
            f"有 {sums['orphan_count']} 笔、{fmt(sums['orphan_amount'])} 元银行明细既未与凭证相符也未列为差异"
            "（例如缺少支付凭证号），是调节后不相等的原因之一。"
        )
    if clearing:
        notes.append("人民银行清算核对的差异另列，不计入本表的调节。")
    cut = ""
    if (first, last) != (period.start, period.end):
        cut = f"对账期间只覆盖 {cn_date(first)}至{cn_date(last)}"
        notes.insert(0, f"{cut}，本表只含这些日期。")
    return Statement(
        run_id=run.pk,
        region=run.region.name,
        region_code=run.region.code,
        bank_code=bank_code,
        bank=bank_name(bank_code),
        period=period,
        as_of=run.as_of,
        run_period=f"{cn_date(run.period_start)}至{cn_date(run.period_end)}",
        generated=now or timezone.now(),
        days=days,
        opening_bank=opening_bank,
        opening_book=opening_book,
        bank_paid=bank_paid,
        book_paid=book_paid,
        totals=sums,
        adjustments=list(adjustments.values()),
        breaks=break_rows,
        clearing=clearing,
        cut=cut,
        notes=notes,
    )


def statement_for(run, bank_code: str, kind: str, value: str | date | None = None) -> Statement:
    return build(run, bank_code, parse_period(kind, value, run))


# --- the tables, once for both files ------------------------------------------------------------------------------

DAY_HEADER = [
    "日期",
    "银行笔数",
    "银行支付金额",
    "退票/失败笔数",
    "退票/失败金额",
    "凭证张数",
    "凭证金额",
    "相符张数",
    "相符金额",
    "在途张数",
    "在途金额",
]
BREAK_HEADER = [
    "序号",
    "差异类别",
    "支付凭证号",
    "银行流水号",
    "日期",
    "我方金额",
    "银行金额",
    "处理状态",
    "责任人",
]


def meta_rows(s: Statement) -> list[tuple[str, str]]:
    local = timezone.localtime(s.generated)
    return [
        ("财政区划", f"{s.region}（{s.region_code}）"),
        ("代理银行", f"{s.bank}（{s.bank_code}）"),
        ("对账期间", s.period.label + (f"（{s.cut}）" if s.cut else "")),
        ("对账依据", f"第 {s.run_id} 次对账（{s.run_period}，对账日 {cn_date(s.as_of)}）"),
        ("生成时间", f"{local:%Y-%m-%d %H:%M}"),
    ]


def day_rows(s: Statement) -> list[list]:
    rows = []
    for d in s.days:
        rows.append(
            [
                d["day"],
                d["bank_count"] - d["failed_count"],
                d["bank_amount"] - d["failed_amount"],
                d["failed_count"],
                d["failed_amount"],
                d["book_count"],
                d["book_amount"],
                d["matched_count"],
                d["matched_amount"],
                d["transit_count"],
                d["transit_amount"],
            ]
        )
    t = s.totals
    rows.append(
        [
            "合计",
            t["bank_count"] - t["failed_count"],
            t["bank_amount"] - t["failed_amount"],
            t["failed_count"],
            t["failed_amount"],
            t["book_count"],
            t["book_amount"],
            t["matched_count"],
            t["matched_amount"],
            t["transit_count"],
            t["transit_amount"],
        ]
    )
    return rows


def balance_rows(s: Statement) -> list[list]:
    """The 余额调节表 as rows of [我方项目, 金额, 银行项目, 金额] (amounts Decimal or None)."""
    left = [["我方支付凭证合计", s.book_paid], ["加：银行已付、我方未付", None]]
    left += [
        [f"    {a.label}（{a.count} 笔）" if a.count else f"    {a.label}", a.amount] for a in s.side("book")
    ]
    if not s.side("book"):
        left.append(["    （无）", None])
    right = [["银行对账单支付合计", s.bank_paid], ["加：我方已付、银行未付", None]]
    right += [
        [f"    {a.label}（{a.count} 笔）" if a.count else f"    {a.label}", a.amount] for a in s.side("bank")
    ]
    if not s.side("bank"):
        right.append(["    （无）", None])
    size = max(len(left), len(right))
    left += [["", None]] * (size - len(left))
    right += [["", None]] * (size - len(right))
    rows = [[a, b, c, d] for (a, b), (c, d) in zip(left, right, strict=True)]
    rows.append(["调节后支付合计", s.adjusted_book, "调节后支付合计", s.adjusted_bank])
    return rows


def summary_rows(s: Statement) -> list[list]:
    return [
        ["", "银行", "我方"],
        ["期初累计（自对账期间起）", s.opening_bank, s.opening_book],
        ["本期支付", s.bank_paid, s.book_paid],
        ["期末累计", s.closing_bank, s.closing_book],
    ]


def break_table(s: Statement) -> list[list]:
    return [
        [
            n,
            b.label,
            "、".join(b.vouchers),
            "、".join(b.serials),
            b.day,
            b.book_amount,
            b.bank_amount,
            b.state or "—",
            b.owner or "",
        ]
        for n, b in enumerate(s.breaks, 1)
    ]


def clearing_table(s: Statement) -> list[list]:
    return [
        [
            _kind_label(c["kind"]),
            c["month"],
            c["note"],
            money(c["book_amount"]) if c["book_amount"] is not None else None,
            money(c["bank_amount"]) if c["bank_amount"] is not None else None,
        ]
        for c in s.clearing
    ]


# --- Excel --------------------------------------------------------------------------------------------------------

AMOUNT_FORMAT = "#,##0.00"


def render_xlsx(s: Statement) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side

    from caiwei.web.exports import escape_workbook

    book = Workbook()
    thin = Side(style="thin", color="000000")
    grid = Border(left=thin, right=thin, top=thin, bottom=thin)
    bold = Font(bold=True)

    def title(sheet, text: str, width: int) -> None:
        sheet.append([text])
        sheet.merge_cells(start_row=sheet.max_row, start_column=1, end_row=sheet.max_row, end_column=width)
        cell = sheet.cell(sheet.max_row, 1)
        cell.font = Font(bold=True, size=16)
        cell.alignment = Alignment(horizontal="center")
        for label, value in meta_rows(s):
            sheet.append([label, value])
            sheet.cell(sheet.max_row, 1).font = bold
        sheet.append([])

    def table(sheet, header: list[str], rows: list[list]) -> None:
        sheet.append(header)
        for cell in sheet[sheet.max_row]:
            cell.font = bold
            cell.border = grid
            cell.alignment = Alignment(horizontal="center", wrap_text=True)
        for values in rows:
            sheet.append([v if not isinstance(v, Decimal) else v for v in values])
            for cell in sheet[sheet.max_row]:
                cell.border = grid
                if isinstance(cell.value, (Decimal, float)):
                    cell.number_format = AMOUNT_FORMAT

    def heading(sheet, text: str) -> None:
        sheet.append([])
        sheet.append([text])
        sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=12)

    first = book.active
    first.title = "对账单"
    title(first, f"{s.bank}对账单（{s.title_period}）", len(DAY_HEADER))
    heading(first, "一、期初、本期与期末")
    table(first, summary_rows(s)[0], summary_rows(s)[1:])
    heading(first, "二、逐日明细")
    table(first, DAY_HEADER, day_rows(s))
    heading(first, f"三、差异（{len(s.breaks)} 条）")
    if s.breaks:
        table(first, BREAK_HEADER, break_table(s))
    else:
        first.append(["本期无差异。"])
    if s.clearing:
        heading(first, "四、人民银行清算核对差异（不计入余额调节）")
        table(
            first, ["差异类别", "月份", "清算编号", "我方已清算金额", "人民银行清算金额"], clearing_table(s)
        )
    for column, width in zip("ABCDEFGHIJK", (24, 12, 16, 12, 14, 10, 16, 10, 16, 10, 14), strict=True):
        first.column_dimensions[column].width = width

    second = book.create_sheet("余额调节表")
    title(second, f"{s.bank}银行存款余额调节表（{s.title_period}）", 4)
    second.append(["单位：元"])
    table(second, ["项目（我方账面）", "金额", "项目（银行对账单）", "金额"], balance_rows(s))
    second.append([])
    second.append(["结论", s.conclusion])
    second.cell(second.max_row, 1).font = bold
    for note in s.notes:
        second.append(["说明", note])
    second.append([])
    second.append(["银行签认：", "", "财政签认：", ""])
    for column, width in zip("ABCD", (52, 18, 52, 18), strict=True):
        second.column_dimensions[column].width = width
    escape_workbook(book)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- Word ---------------------------------------------------------------------------------------------------------


def render_docx(s: Statement, signoff=None) -> bytes:
    """Both tables in one document (A4 landscape), with the fonts and tables of the monthly report."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_LINE_SPACING
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt

    from caiwei.desk.report import (
        BODY_FONT,
        HEADING_FONT,
        LATIN_FONT,
        _bottom_border,
        _fonts,
        _page_field,
        _repeat_header,
    )

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = LATIN_FONT
    normal.font.size = Pt(12)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    normal.paragraph_format.space_after = Pt(2)
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin = section.right_margin = Mm(20)
    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _fonts(header.add_run(f"{s.region}　{s.bank}　{s.title_period}　第 {s.run_id} 次对账"), BODY_FONT, 10.5)
    _bottom_border(header)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_field(footer)

    def paragraph(text: str, font: str = BODY_FONT, size: float = 12, align=None, bold=None):
        p = doc.add_paragraph()
        if align is not None:
            p.alignment = align
        _fonts(p.add_run(text), font, size, bold)
        return p

    def table(header: list[str], rows: list[list], widths: list[float]) -> None:
        t = doc.add_table(rows=1, cols=len(header))
        t.style = "Table Grid"
        t.alignment = WD_TABLE_ALIGNMENT.CENTER
        _repeat_header(t.rows[0])
        for cell, text in zip(t.rows[0].cells, header, strict=True):
            cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
            _fonts(cell.paragraphs[0].add_run(text), HEADING_FONT, 10)
        for values in rows:
            for cell, value in zip(t.add_row().cells, values, strict=True):
                number = isinstance(value, (Decimal, int)) and not isinstance(value, bool)
                text = fmt(value) if isinstance(value, Decimal) else "" if value is None else str(value)
                if number:
                    cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
                _fonts(cell.paragraphs[0].add_run(text), BODY_FONT, 10)
        t.autofit = False
        for column, width in zip(t.columns, widths, strict=True):
            column.width = Mm(width)
        for r in t.rows:
            for cell, width in zip(r.cells, widths, strict=True):
                cell.width = Mm(width)

    def front(title_text: str) -> None:
        p = paragraph(title_text, HEADING_FONT, 18, WD_ALIGN_PARAGRAPH.CENTER)
        p.paragraph_format.space_after = Pt(8)
        for label, value in meta_rows(s):
            paragraph(f"{label}：{value}", size=11)

    front(f"{s.bank}对账单（{s.title_period}）")
    paragraph("一、期初、本期与期末", HEADING_FONT, 14)
    table(summary_rows(s)[0], summary_rows(s)[1:], [80, 50, 50])
    paragraph("二、逐日明细", HEADING_FONT, 14)
    table(DAY_HEADER, day_rows(s), [27, 18, 29, 20, 25, 18, 29, 18, 29, 18, 26])
    paragraph(f"三、差异（{len(s.breaks)} 条）", HEADING_FONT, 14)
    if s.breaks:
        table(BREAK_HEADER, break_table(s), [12, 28, 45, 45, 24, 26, 26, 20, 31])
    else:
        paragraph("本期无差异。")
    if s.clearing:
        paragraph("四、人民银行清算核对差异（不计入余额调节）", HEADING_FONT, 14)
        table(
            ["差异类别", "月份", "清算编号", "我方已清算金额", "人民银行清算金额"],
            clearing_table(s),
            [45, 25, 77, 55, 55],
        )
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    front(f"{s.bank}银行存款余额调节表（{s.title_period}）")
    paragraph("单位：元", size=10.5, align=WD_ALIGN_PARAGRAPH.RIGHT)
    table(["项目（我方账面）", "金额", "项目（银行对账单）", "金额"], balance_rows(s), [86, 42, 86, 43])
    paragraph(s.conclusion, size=12, bold=not s.balanced).paragraph_format.space_before = Pt(8)
    for note in s.notes:
        paragraph(f"说明：{note}", size=10.5)
    bank_sig = finance_sig = "签字：＿＿＿＿＿＿　日期：＿＿＿＿＿＿"
    if signoff is not None:
        if signoff.bank_user_id:
            bank_sig = (
                f"{signoff.bank_user}　{timezone.localtime(signoff.bank_signed_at):%Y-%m-%d %H:%M} 已签认"
            )
        if signoff.finance_user_id:
            finance_sig = f"{signoff.finance_user}　{timezone.localtime(signoff.finance_signed_at):%Y-%m-%d %H:%M} 已签认"
    p = paragraph(f"银行签认：{bank_sig}", size=12)
    p.paragraph_format.space_before = Pt(18)
    paragraph(f"财政签认：{finance_sig}", size=12)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


FORMATS = {
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", render_xlsx),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", render_docx),
}


def render(s: Statement, fmt_: str, signoff=None) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of ``s`` as xlsx or docx."""
    if fmt_ not in FORMATS:
        raise StatementError(f"不支持的格式“{fmt_}”，可选：xlsx、docx")
    content_type, renderer = FORMATS[fmt_]
    data = renderer(s, signoff) if fmt_ == "docx" else renderer(s)
    return f"{s.file_stem}.{fmt_}", content_type, data
