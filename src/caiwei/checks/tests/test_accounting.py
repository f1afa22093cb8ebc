"""The accounting pack 会计语义检查 on a small clean sandbox (SQLite): no finding; breaking the ledger against the
rules' own statements (sides of a payment, normal side of a subject's balance) makes exactly those rules report."""

import sqlite3
from datetime import date

from caiwei.checks.engine import shipped_packs
from caiwei.checks.runner import Options, run_url
from caiwei.sandbox.generator import GenerateSpec, generate

AS_OF = date(2026, 12, 31)


def _run(url, **params):
    rules = list(shipped_packs()["accounting"].rules)
    return {o.rule.id: o for o in run_url(url, rules, Options(as_of=AS_OF, params=params))}


def test_clean_ledger_then_a_region_booked_on_the_wrong_side(tmp_path):
    path = tmp_path / "acc.sqlite3"
    url = f"sqlite:///{path}"
    generate(url, GenerateSpec(payments=600, seed=3, regions="152500000:1"))
    clean = _run(url)
    assert {k: (o.count, o.error) for k, o in clean.items() if o.count or o.error} == {}

    conn = sqlite3.connect(path)
    region = "152500000"
    # Every payment voucher of the region booked the other way round: 借 国库存款、贷 支出.
    conn.execute(
        "UPDATE gl_voucher_line SET debit_amt = credit_amt, credit_amt = debit_amt"
        " WHERE mof_div_code = ? AND gl_vou_id IN (SELECT gl_vou_id FROM gl_voucher WHERE bus_kind = '支付')",
        (region,),
    )
    vouchers = {
        r[0]
        for r in conn.execute(
            "SELECT gl_vou_id FROM gl_voucher WHERE mof_div_code = ? AND bus_kind = '支付'", (region,)
        )
    }
    subjects = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT subject_code FROM gl_voucher_line WHERE mof_div_code = ? AND subject_code LIKE '5%'",
            (region,),
        )
    }
    conn.commit()
    conn.close()
    broken = _run(url)
    assert {str(k[0]) for k in broken["ACC-001"].keys} == vouchers
    assert broken["ACC-002"].count == 0 and broken["ACC-003"].count == 0  # balanced, amounts tie
    assert {str(k[0]) for k in broken["ACC-004"].keys} == subjects  # 支出 now on the credit side
    tuned = _run(url, **{"ACC-004": {"categories": "负债、净资产、收入"}})
    assert tuned["ACC-004"].count == 0


def test_ledger_ties_to_each_indicator_and_names_its_source(tmp_path):
    path = tmp_path / "tie.sqlite3"
    url = f"sqlite:///{path}"
    generate(url, GenerateSpec(payments=600, seed=5, regions="152500000:1"))
    assert {k: o.count for k, o in _run(url).items() if o.count or o.error} == {}
    conn = sqlite3.connect(path)
    # One payment voucher booked 100.00 too much on both lines (still balanced), another without its source document.
    cert, bgt, region = conn.execute(
        "SELECT v.pay_cert_no, p.bgt_id, p.mof_div_code FROM pay_voucher_bill v"
        " JOIN pay_voucher p ON p.pay_app_id = v.pay_app_id ORDER BY v.pay_cert_no LIMIT 1"
    ).fetchone()
    conn.execute(
        "UPDATE gl_voucher_line SET debit_amt = CASE WHEN debit_amt > 0 THEN debit_amt + 100 ELSE 0 END,"
        " credit_amt = CASE WHEN credit_amt > 0 THEN credit_amt + 100 ELSE 0 END WHERE gl_vou_id = ?",
        (f"GL{cert}",),
    )
    (orphan,) = conn.execute(
        "SELECT gl_vou_id FROM gl_voucher WHERE bus_kind = '支付' AND gl_vou_id <> ? ORDER BY gl_vou_id DESC LIMIT 1",
        (f"GL{cert}",),
    ).fetchone()
    conn.execute("UPDATE gl_voucher SET pay_cert_no = NULL WHERE gl_vou_id = ?", (orphan,))
    conn.commit()
    conn.close()
    broken = _run(url)
    assert {str(k[0]) for k in broken["ACC-005"].keys} == {orphan}
    assert bgt in {str(k[0]) for k in broken["ACC-006"].keys}
    assert region in {str(k[0]) for k in broken["ACC-003"].keys}
    assert broken["ACC-001"].count == 0 and broken["ACC-002"].count == 0
    assert _run(url, **{"ACC-006": {"tolerance": 1_000_000_000}})["ACC-006"].count == 0
