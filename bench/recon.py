"""Reconciliation engine at scale: N bank lines against N vouchers (a share of them split across several lines, a few
breaks of each kind), in DuckDB, against baselines measured in the same run.

1. Caiwei ``reconcile()`` (key match with split sums, attribute match of keyless lines, clearing, break classes).
2. Baseline: a raw DuckDB full outer join of the same normalised inputs on the voucher number, with the amount
   comparison after summing the bank side per voucher — the least any reconciliation must do (the limit; the goal in
   issue 12 is Caiwei ≤ 1.3× this).
3. datacompy on the same data, where it fits in memory (``--datacompy``, pandas under the hood; it holds both sides
   as DataFrames).
Peak RSS of this process is printed at the end (VmHWM).

The inputs are generated inside DuckDB with SQL (not timed). Run:
  .venv/bin/python bench/recon.py [--lines 10000000] [--datacompy N]
"""

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import duckdb  # noqa: E402

from caiwei.recon.engine import (  # noqa: E402
    DUCKDB_MEMORY,
    Tolerance,
    create_inputs,
    load_business_days,
    reconcile,
)

START = date(2026, 1, 1)


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """n vouchers over 240 business days; every 10th paid in two bank lines; 1 in 100 000 of each break kind."""
    create_inputs(con)
    days = [START + timedelta(days=i) for i in range(400) if (START + timedelta(days=i)).weekday() < 5]
    load_business_days(con, days)
    con.execute(
        """
        INSERT INTO book
        SELECT 'V' || lpad(i::VARCHAR, 10, '0'), 'B10' || (i % 6)::VARCHAR, 'A' || lpad(i::VARCHAR, 10, '0'),
               (SELECT day FROM bizday WHERE n = (i % 240)), (100 + (i * 7919) % 10000000) / 100.0,
               '62' || lpad(((i * 104729) % 1000000000)::VARCHAR, 12, '0'), FALSE,
               (SELECT day FROM bizday WHERE n = (i % 240) + 1), (100 + (i * 7919) % 10000000) / 100.0
        FROM range(?) t(i)
        """,
        [n],
    )
    # Bank lines: one per voucher, or two halves for every 10th; then the breaks.
    con.execute(
        """
        INSERT INTO bank
        SELECT row_number() OVER (), bank_code, vou_no, agent_business_no, vou_date, amt, payee_acct_no, '成功', NULL,
               'bench.csv', row_number() OVER ()
        FROM (
          SELECT v.*, CASE WHEN s.part = 0 AND split THEN round(v.amount / 2, 2)
                           WHEN split THEN v.amount - round(v.amount / 2, 2) ELSE v.amount END AS amt
          FROM (SELECT *, (substr(vou_no, 2)::BIGINT % 10 = 0) AS split FROM book) v
          JOIN (SELECT 0 AS part UNION ALL SELECT 1) s ON s.part = 0 OR v.split
        )
        """
    )
    con.execute("UPDATE bank SET amount = amount + 1 WHERE line_id % 100000 = 7")  # amount differs
    con.execute("DELETE FROM bank WHERE line_id % 100000 = 11")  # only in the book
    con.execute(
        "INSERT INTO bank SELECT line_id + 100000000, bank_code, 'X' || pay_cert_no, 'X' || agent_business_no, "
        "pay_date, amount + 0.37, '6228480000000000000', '成功', NULL, source, line FROM bank WHERE line_id % 100000 = 13"
    )  # only at the bank
    con.execute(
        """
        INSERT INTO clearing
        SELECT 'QS' || bank_code || strftime(lqd_date, '%Y%m%d'), bank_code, lqd_date, count(*), sum(lqd_amount)
        FROM book GROUP BY bank_code, lqd_date
        """
    )


def baseline(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        """
        SELECT count(*) FROM (SELECT pay_cert_no, sum(amount) AS amount FROM bank GROUP BY pay_cert_no) b
        FULL JOIN book v ON v.vou_no = b.pay_cert_no
        WHERE b.amount IS DISTINCT FROM v.amount
        """
    ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000_000, help="vouchers (bank lines are 10 % more)")
    parser.add_argument("--datacompy", type=int, default=0, help="also run datacompy at this many vouchers")
    args = parser.parse_args()
    con = duckdb.connect()
    # As the platform runs it (recon/services.py): bounded memory, spilling to a temporary folder beyond it.
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute("SET temp_directory = '/tmp/caiwei-bench-recon-spill'")
    t0 = time.perf_counter()
    build(con, args.lines)
    lines = con.execute("SELECT count(*) FROM bank").fetchone()[0]
    print(f"inputs: {args.lines:,} vouchers, {lines:,} bank lines, built in {time.perf_counter() - t0:.1f} s")
    as_of = START + timedelta(days=380)
    times = {}
    t0 = time.perf_counter()
    base_count = baseline(con)
    times["baseline"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = reconcile(con, Tolerance(date_window=1, transit_days=10), as_of)
    times["caiwei"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline(con)
    times["baseline2"] = time.perf_counter() - t0
    base = (times["baseline"] + times["baseline2"]) / 2
    print(f"baseline (raw DuckDB join, mean of two): {base:.2f} s  — unequal voucher groups: {base_count:,}")
    print(f"caiwei reconcile: {times['caiwei']:.2f} s  ratio {times['caiwei'] / base:.2f}")
    print(f"breaks by class: {result.by_class()}  matched by key {result.matched_by_key:,}")
    if args.datacompy:
        import datacompy

        small = duckdb.connect()
        build(small, args.datacompy)
        bank = small.execute("SELECT pay_cert_no AS vou_no, sum(amount) AS amount FROM bank GROUP BY 1").df()
        book = small.execute("SELECT vou_no, amount FROM book").df()
        t0 = time.perf_counter()
        compare = datacompy.Compare(book, bank, join_columns="vou_no")
        mismatches = len(compare.all_mismatch()) + len(compare.df1_unq_rows) + len(compare.df2_unq_rows)
        t_dc = time.perf_counter() - t0
        small.execute("CREATE OR REPLACE TEMP TABLE x AS SELECT 1")
        t0 = time.perf_counter()
        reconcile(small, Tolerance(date_window=1, transit_days=10), as_of)
        t_cw = time.perf_counter() - t0
        print(
            f"datacompy at {args.datacompy:,}: {t_dc:.2f} s ({mismatches:,} rows), caiwei {t_cw:.2f} s, "
            f"datacompy / caiwei {t_dc / t_cw:.1f}"
        )
    print(f"peak RSS (VmHWM): {vm_hwm_mb():.0f} MB")


if __name__ == "__main__":
    main()
