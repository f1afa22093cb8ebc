"""The matching engine (issue 12 §2–3) on random books: any split of a voucher across bank lines (一对多) and the
central bank's clearing of many vouchers in one line (多对一) reconcile with zero breaks; a single changed amount
anywhere yields exactly the breaks that amount touches; each break class arises from the data shape it names."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caiwei.recon.engine import BREAKS, Tolerance, create_inputs, load_business_days, reconcile

START = date(2026, 3, 2)
DAYS = [START + timedelta(days=i) for i in range(120) if (START + timedelta(days=i)).weekday() < 5]
AS_OF = DAYS[-1]
CENT = Decimal("0.01")


def fen(n: int) -> Decimal:
    return (Decimal(n) / 100).quantize(CENT)


@st.composite
def books(draw):
    """Vouchers with distinct amounts; each paid in 1–4 bank lines that sum to it, on its day or within T+1; each
    bank and clearing day cleared in one PBOC line."""
    n = draw(st.integers(1, 25))
    amounts = draw(st.lists(st.integers(100, 10**8), min_size=n, max_size=n, unique=True))
    # One payee account per voucher: several vouchers of one account with keyless lines are the ambiguous case,
    # shown by test_each_break_class_from_the_shape_it_names.
    accounts = draw(st.lists(st.integers(10**9, 10**10), min_size=n, max_size=n, unique=True))
    vouchers, lines = [], []
    for i, cents in enumerate(amounts):
        day_i = draw(st.integers(0, len(DAYS) - 10))
        bank = draw(st.sampled_from(["B101", "B102", "B103"]))
        vou = {
            "vou_no": f"V{i:05d}",
            "bank_code": bank,
            "agent_business_no": f"A{i:05d}",
            "vou_date": DAYS[day_i],
            "amount": fen(cents),
            "payee_acct_no": f"62{accounts[i]:d}",
            "refunded": False,
            "lqd_date": DAYS[day_i + 1],
            "lqd_amount": fen(cents),
        }
        vouchers.append(vou)
        parts = draw(st.integers(1, min(4, cents)))
        cuts = (
            sorted(
                draw(st.lists(st.integers(1, cents - 1), min_size=parts - 1, max_size=parts - 1, unique=True))
            )
            if parts > 1
            else []
        )
        pieces = [b - a for a, b in zip([0, *cuts], [*cuts, cents], strict=True)]
        keyless = parts == 1 and draw(
            st.booleans()
        )  # a line with neither key: matched by amount, account and date
        for piece in pieces:
            lines.append(
                {
                    "bank_code": bank,
                    "pay_cert_no": "" if keyless else vou["vou_no"],
                    "agent_business_no": "" if keyless else vou["agent_business_no"],
                    "pay_date": DAYS[day_i + draw(st.integers(0, 1))],
                    "amount": fen(piece),
                    "payee_acct_no": vou["payee_acct_no"],
                    "status": "成功",
                }
            )
    return vouchers, lines


def load(vouchers, lines, clearing=None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_inputs(con)
    load_business_days(con, DAYS)
    con.executemany(
        "INSERT INTO book VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [tuple(v.values()) for v in vouchers],
    )
    con.executemany(
        "INSERT INTO bank VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'test.csv', ?)",
        [
            (
                i,
                b["bank_code"],
                b["pay_cert_no"],
                b["agent_business_no"],
                b["pay_date"],
                b["amount"],
                b["payee_acct_no"],
                b["status"],
                i + 2,
            )
            for i, b in enumerate(lines)
        ],
    )
    if clearing is None:
        clearing = clearing_of(vouchers)
    con.executemany("INSERT INTO clearing VALUES (?, ?, ?, ?, ?)", clearing)
    return con


def clearing_of(vouchers) -> list[tuple]:
    groups: dict[tuple, list] = {}
    for v in vouchers:
        groups.setdefault((v["bank_code"], v["lqd_date"]), []).append(v["lqd_amount"])
    return [(f"QS{b}{d:%Y%m%d}", b, d, len(a), sum(a, Decimal(0))) for (b, d), a in sorted(groups.items())]


def run(vouchers, lines, clearing=None):
    return reconcile(load(vouchers, lines, clearing), Tolerance(date_window=1, transit_days=3), AS_OF)


@settings(max_examples=80, deadline=None)
@given(books())
def test_splits_and_clearing_merges_of_clean_data_reconcile_with_zero_breaks(book):
    vouchers, lines = book
    result = run(vouchers, lines)
    assert result.breaks == []
    assert result.matched_by_key + result.matched_by_attributes == len(vouchers)
    assert result.cleared_lines == len(clearing_of(vouchers))


@settings(max_examples=80, deadline=None)
@given(books(), st.data())
def test_one_changed_amount_yields_exactly_the_breaks_it_touches(book, data):
    vouchers, lines = book
    side = data.draw(st.sampled_from(["bank", "book", "clearing"]))
    delta = fen(data.draw(st.integers(1, 10**6)))
    clearing = clearing_of(vouchers)
    if side == "bank":
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i]["amount"] += delta
        line = lines[i]
        if line["pay_cert_no"]:
            expected = {("amount", line["pay_cert_no"])}
        else:  # a keyless line no longer pairs: the line and its voucher stand alone
            expected = {("bank_only", None)} | {
                ("book_only", v["vou_no"]) for v in vouchers if v["payee_acct_no"] == line["payee_acct_no"]
            }
    elif side == "book":
        v = vouchers[data.draw(st.integers(0, len(vouchers) - 1))]
        keyless = not any(b["pay_cert_no"] == v["vou_no"] for b in lines)
        v["amount"] += delta
        v["lqd_amount"] += delta  # the bank would have cleared what we asked it to pay
        expected = {("clearing_amount", None)} | (
            {("bank_only", None), ("book_only", v["vou_no"])} if keyless else {("amount", v["vou_no"])}
        )
    else:
        j = data.draw(st.integers(0, len(clearing) - 1))
        clearing[j] = (*clearing[j][:4], clearing[j][4] + delta)
        expected = {("clearing_amount", None)}
    result = run(vouchers, lines, clearing)
    got = {
        (b["kind"], b["vouchers"][0] if b["kind"] in ("amount", "book_only") else None) for b in result.breaks
    }
    assert got == expected
    assert len(result.breaks) == len(expected)


def test_each_break_class_from_the_shape_it_names():
    day = DAYS[10]
    v = lambda no, amt, **kw: {  # noqa: E731
        "vou_no": no,
        "bank_code": "B101",
        "agent_business_no": "A" + no,
        "vou_date": day,
        "amount": Decimal(amt),
        "payee_acct_no": "62" + no,
        "refunded": False,
        "lqd_date": DAYS[11],
        "lqd_amount": Decimal(amt),
        **kw,
    }
    b = lambda no, amt, **kw: {  # noqa: E731
        "bank_code": "B101",
        "pay_cert_no": no,
        "agent_business_no": "A" + no,
        "pay_date": day,
        "amount": Decimal(amt),
        "payee_acct_no": "62" + no,
        "status": "成功",
        **kw,
    }
    vouchers = [
        v("V1", "10.00"),  # amount differs
        v("V2", "20.00"),  # duplicated at the bank
        v("V3", "30.00"),  # 退票 at the bank, paid with us
        v("V4", "40.00", refunded=True),  # 退票 and our refund: consistent
        v("V5", "50.00"),  # paid outside the window
        v("V6", "60.00", vou_date=DAYS[1], lqd_date=None),  # never at the bank, long past its window
        v(
            "V7", "70.00", vou_date=DAYS[-1], lqd_date=None
        ),  # not at the bank yet, inside its window: in transit
        v("V8", "80.00", agent_business_no="AX"),
        v("V9", "90.00", agent_business_no="AX"),  # two vouchers, one bank serial number
    ]
    lines = [
        b("V1", "10.01"),
        b("V2", "20.00"),
        b("V2", "20.00"),
        b("V3", "30.00", status="退票"),
        b("V4", "40.00", status="退票"),
        b("V5", "50.00", pay_date=DAYS[14]),
        b("Z1", "99.00", agent_business_no="AZ"),  # only at the bank
        b("V8", "80.00"),
        b("V9", "90.00"),
    ]
    clearing = clearing_of([x for x in vouchers if x["lqd_date"]])
    clearing.append(("QSX", "B109", DAYS[3], 1, Decimal("5.00")))  # only in the clearing file
    result = run(vouchers, lines, clearing)
    got = {(x["kind"], tuple(x["vouchers"])) for x in result.breaks}
    assert got == {
        ("amount", ("V1",)),
        ("bank_duplicate", ("V2",)),
        ("status", ("V3",)),
        ("date", ("V5",)),
        ("book_only", ("V6",)),
        ("bank_only", ()),
        ("book_duplicate", ("V8", "V9")),
        ("clearing_only", ()),
    }
    assert result.in_transit == 1
    assert set(BREAKS) >= {k for k, _ in got}


@pytest.mark.parametrize(
    "bad", [{"date_window": -1}, {"date_window": 31}, {"amount": "0.001"}, {"amount": "-1"}]
)
def test_tolerance_rules_are_checked(bad):
    with pytest.raises(ValueError, match="窗口|容差"):
        Tolerance.from_dict(bad)
