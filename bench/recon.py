"""Reconciliation engine at scale: N bank lines against N vouchers (a share of them split across several lines, a few
breaks of each kind), in DuckDB, against baselines measured in the same run.

1. Caiwei ``reconcile()`` (key match with split sums, attribute match of keyless lines, clearing, break classes).
2. Baseline: a raw DuckDB full outer join of the same normalised inputs on the voucher number, with the amount
   comparison after summing the bank side per voucher — the least any reconciliation must do (the limit; the goal in
   issue 12 is Caiwei ≤ 1.3× this).
3. datacompy (pandas under the hood; it holds both sides as DataFrames) on the same data, run by the Python of its own
   virtual environment (``--datacompy /path/to/venv/bin/python``) so that pandas stays out of ours: both sides are
   written to Parquet by DuckDB first (the bank side already summed per voucher, which spares datacompy the split
   lines), not timed; the time of loading them into pandas and of the comparison are printed apart. Where it does not
   finish at N vouchers (memory), it is tried at half the size until it does, and said so.
Peak RSS of this process is printed at the end (VmHWM).

The inputs are generated inside DuckDB with SQL (not timed). Run:
  .venv/bin/python bench/recon.py [--lines 10000000] [--datacompy /work/datacompy-venv/bin/python]
"""

import argparse
import json
import subprocess
import sys
import tempfile
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


DATACOMPY_WRAPPER = """
import json, resource, sys, time
import datacompy, pandas
started = time.perf_counter()
book, bank = pandas.read_parquet(sys.argv[1]), pandas.read_parquet(sys.argv[2])
loaded = time.perf_counter() - started
started = time.perf_counter()
compare = datacompy.PandasCompare(book, bank, join_columns="vou_no")
differing = len(compare.all_mismatch()) + len(compare.df1_unq_rows) + len(compare.df2_unq_rows)
compared = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load": loaded, "compare": compared, "differing": differing, "rss_mb": rss}))
"""


def run_datacompy(python: str, n: int) -> tuple[dict, float]:
    """datacompy at n vouchers (its own process and venv) and Caiwei's reconcile() at the same n."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    build(con, n)
    with tempfile.TemporaryDirectory(prefix="caiwei-bench-datacompy-") as tmp:
        book, bank = f"{tmp}/book.parquet", f"{tmp}/bank.parquet"
        con.execute(f"COPY (SELECT vou_no, amount, payee_acct_no FROM book) TO '{book}' (FORMAT parquet)")
        con.execute(
            f"COPY (SELECT pay_cert_no AS vou_no, sum(amount) AS amount, min(payee_acct_no) AS payee_acct_no "
            f"FROM bank GROUP BY 1) TO '{bank}' (FORMAT parquet)"
        )
        done = subprocess.run([python, "-c", DATACOMPY_WRAPPER, book, bank], capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        con.close()
        raise RuntimeError(
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"退出码 {done.returncode}"
        )
    started = time.perf_counter()
    reconcile(con, Tolerance(date_window=1, transit_days=10), START + timedelta(days=380))
    took = time.perf_counter() - started
    con.close()
    return json.loads(done.stdout), took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000_000, help="vouchers (bank lines are 10 % more)")
    parser.add_argument(
        "--datacompy", help="python of a venv with datacompy and pyarrow: compare in the same run"
    )
    parser.add_argument(
        "--datacompy-lines", type=int, default=0, help="vouchers for datacompy (default --lines)"
    )
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
    print(f"peak RSS (VmHWM): {vm_hwm_mb():.0f} MB")
    if args.datacompy:
        n = args.datacompy_lines or args.lines
        while n >= 100_000:
            try:
                theirs, ours = run_datacompy(args.datacompy, n)
            except RuntimeError as exc:
                print(f"datacompy at {n:,} vouchers did not finish ({exc}); trying half")
                n //= 2
                continue
            print(
                f"datacompy at {n:,}: compare {theirs['compare']:.2f} s (+ {theirs['load']:.2f} s loading Parquet), "
                f"{theirs['differing']:,} rows, peak RSS {theirs['rss_mb']:.0f} MB; caiwei reconcile {ours:.2f} s; "
                f"datacompy compare / caiwei {theirs['compare'] / ours:.1f}"
            )
            break


if __name__ == "__main__":
    main()
