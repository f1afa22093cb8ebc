"""Cross-database table diff (caiwei.recon.diff): an N-row table against its copy in another database (PostgreSQL,
MariaDB) with 10 differing rows, against baselines measured in the same run:

- ``COUNT(*)`` on both sides at once — the least any comparison must do (issue 12's goal: the diff ≤ 3× this);
  PostgreSQL tables are VACUUMed after loading, as autovacuum would, so that neither run pays for the load;
- reladiff (PyPI, the maintained fork of data-diff, the same checksum-and-bisect method) on the same two tables,
  run from its own virtual environment (``--reladiff /path/to/venv/bin/python``) so that its pins do not touch
  ours; its differing keys must equal ours;
- fetch both sides fully (two threads) and compare in Python (``--fetch-all``; at 10 M rows this needs several GB).

Run: .venv/bin/python bench/tablediff.py [--rows 1000000] [--reuse] [--reladiff PATH] [--fetch-all] [--md5]
     [--left postgresql://postgres@127.0.0.1:5432/caiwei_bench_recon] [--right mysql://root@127.0.0.1:3306/caiwei_bench_recon]
"""

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from caiwei.recon.diff import diff_tables  # noqa: E402
from caiwei.sandbox.generator import normalize_url  # noqa: E402

TABLE = "bench_pay_voucher_bill"

DDL = {
    "postgresql": f"""CREATE TABLE {TABLE} (
        id BIGINT PRIMARY KEY, pay_cert_no VARCHAR(40) NOT NULL, agency_code VARCHAR(20) NOT NULL,
        pay_amt NUMERIC(18, 2) NOT NULL, pay_date DATE NOT NULL, payee_acct_name VARCHAR(100),
        create_time TIMESTAMP(6) NOT NULL, is_cleared BOOLEAN NOT NULL)""",
    "mysql": f"""CREATE TABLE {TABLE} (
        id BIGINT PRIMARY KEY, pay_cert_no VARCHAR(40) NOT NULL, agency_code VARCHAR(20) NOT NULL,
        pay_amt DECIMAL(18, 2) NOT NULL, pay_date DATE NOT NULL, payee_acct_name VARCHAR(100),
        create_time DATETIME(6) NOT NULL, is_cleared BOOL NOT NULL) CHARACTER SET utf8mb4""",
}

# The same deterministic rows written by each server from a sequence of ids (no Python in between).
FILL = {
    "postgresql": f"""INSERT INTO {TABLE}
        SELECT i, 'ZF' || lpad(i::text, 12, '0'), '1525' || lpad((i % 300)::text, 5, '0'),
               ((i * 7919) % 10000000) / 100.0, DATE '2026-01-01' + (i % 365)::int,
               CASE WHEN i % 11 = 0 THEN NULL ELSE '预算单位收款人' || (i % 997) END,
               TIMESTAMP '2026-01-01 08:00:00' + (i % 86400) * INTERVAL '1 second' + (i % 1000) * INTERVAL '1 microsecond',
               i % 3 <> 0
        FROM generate_series(1::bigint, :n) AS s(i)""",
    "mysql": f"""INSERT INTO {TABLE}
        SELECT seq, CONCAT('ZF', LPAD(seq, 12, '0')), CONCAT('1525', LPAD(seq % 300, 5, '0')),
               ((seq * 7919) % 10000000) / 100.0, DATE '2026-01-01' + INTERVAL (seq % 365) DAY,
               CASE WHEN seq % 11 = 0 THEN NULL ELSE CONCAT('预算单位收款人', seq % 997) END,
               TIMESTAMP '2026-01-01 08:00:00' + INTERVAL (seq % 86400) SECOND + INTERVAL (seq % 1000) MICROSECOND,
               seq % 3 <> 0
        FROM seq_1_to_{{n}}""",
}


# 10 differing rows on the right: 3 deleted, 3 inserted (after the last id), 4 changed (amount, NULL → value, date,
# flag). Every id is a fraction of n, so the edits land inside the table at any size.
def edits(n: int) -> list[str]:
    new = [n + 1, n + 2, n + 3]
    return [
        f"DELETE FROM {TABLE} WHERE id IN (17, {n // 2}, {n - 10})",
        f"INSERT INTO {TABLE} VALUES ({new[0]}, 'ZF999', '152500001', 1.00, DATE '2026-12-31', '新增', "
        "TIMESTAMP '2026-12-31 23:59:59', 1)",
        f"INSERT INTO {TABLE} VALUES ({new[1]}, 'ZF998', '152500001', 2.00, DATE '2026-12-31', NULL, "
        "TIMESTAMP '2026-12-31 23:59:59', 0)",
        f"INSERT INTO {TABLE} VALUES ({new[2]}, 'ZF997', '152500001', 3.00, DATE '2026-12-31', '新增', "
        "TIMESTAMP '2026-12-31 23:59:59', 1)",
        f"UPDATE {TABLE} SET pay_amt = pay_amt + 0.01 WHERE id = {n // 8 - 1}",
        f"UPDATE {TABLE} SET payee_acct_name = '补录收款人' WHERE id = {11 * (n // 25 // 11)}",
        f"UPDATE {TABLE} SET pay_date = pay_date + INTERVAL 1 DAY WHERE id = {n * 7 // 9}",
        f"UPDATE {TABLE} SET is_cleared = NOT is_cleared WHERE id = 3",
    ]


def server_db(url: str) -> None:
    parsed = sa.engine.make_url(url)
    admin_db = "postgres" if parsed.get_backend_name() == "postgresql" else ""
    admin = sa.create_engine(parsed.set(database=admin_db), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if parsed.get_backend_name() == "postgresql":
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": parsed.database}
            )
            if not exists.scalar():
                conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
        else:
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}` CHARACTER SET utf8mb4"))
    admin.dispose()


def build(engine: sa.Engine, rows: int, edited: bool) -> None:
    kind = "postgresql" if engine.dialect.name == "postgresql" else "mysql"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(sa.text(DDL[kind]))
        if kind == "postgresql":
            conn.execute(sa.text(FILL[kind]), {"n": rows})
        else:
            conn.execute(sa.text(FILL[kind].format(n=rows)))
        if edited:
            for sql in edits(rows):
                if kind == "postgresql":
                    sql = (
                        sql.replace("INTERVAL 1 DAY", "1")
                        .replace(", 1)", ", true)")
                        .replace(", 0)", ", false)")
                    )
                conn.execute(sa.text(sql))
        if kind == "mysql":
            conn.execute(sa.text(f"ANALYZE TABLE {TABLE}"))
    if kind == "postgresql":
        # VACUUM as in production (autovacuum would otherwise start in the middle of a run): hint bits set, the
        # visibility map written, statistics read — so that the first COUNT(*) does not pay for the load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {TABLE}"))


def fetch_all(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(
            sa.text(f"SELECT * FROM {TABLE} ORDER BY id")
        )
        return result.all()


def baseline(left: sa.Engine, right: sa.Engine):
    """Fetch both sides fully (at once, two threads), then a merge by key comparing every column in Python."""
    with ThreadPoolExecutor(2) as pool:
        lrows, rrows = pool.map(fetch_all, (left, right))
    only_left, only_right, changed = [], [], []
    i = j = 0
    while i < len(lrows) or j < len(rrows):
        if j >= len(rrows) or (i < len(lrows) and lrows[i][0] < rrows[j][0]):
            only_left.append(lrows[i][0])
            i += 1
        elif i >= len(lrows) or rrows[j][0] < lrows[i][0]:
            only_right.append(rrows[j][0])
            j += 1
        else:
            a, b = lrows[i], rrows[j]
            cols = [k for k in range(1, len(a)) if not same(a[k], b[k])]
            if cols:
                changed.append(a[0])
            i += 1
            j += 1
    return sorted(only_left), sorted(only_right), sorted(changed), len(lrows) + len(rrows)


def same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # PostgreSQL boolean against MariaDB TINYINT(1)
        return a is None and b is None or (a is not None and b is not None and bool(a) == bool(b))
    return a == b


def count_both(left: sa.Engine, right: sa.Engine) -> float:
    def count(engine):
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT COUNT(*) FROM {TABLE}")).scalar()

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(count, (left, right)))
    return time.perf_counter() - started


# Run by the Python of reladiff's own virtual environment, through its library API, every column compared, the whole
# diff iterated. skip_sort_results: reladiff 0.6.0 sorts the differing rows by their values and fails on a NULL
# ("'<' not supported between NoneType and str"); its command line then printed an incomplete diff without an error.
RELADIFF_WRAPPER = """
import json, sys, time
from reladiff import connect_to_table, diff_tables
left, right, table, columns = sys.argv[1], sys.argv[2], sys.argv[3], tuple(sys.argv[4].split(","))
started = time.perf_counter()
diff = diff_tables(connect_to_table(left, table, "id"), connect_to_table(right, table, "id"), extra_columns=columns, skip_sort_results=True)
rows = [(sign, int(row[0])) for sign, row in diff]
print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
"""


def run_reladiff(
    python: str, left: str, right: str, columns: list[str]
) -> tuple[float, tuple[list, list, list]]:
    """reladiff (hashdiff across databases, all columns) on the same two tables; its differing keys by side."""
    argv = [python, "-c", RELADIFF_WRAPPER, left, right, TABLE, ",".join(columns)]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # noqa: S603
    took = time.perf_counter() - started
    minus = {key for sign, key in json.loads(out)["rows"] if sign == "-"}
    plus = {key for sign, key in json.loads(out)["rows"] if sign == "+"}
    both = minus & plus
    return took, (sorted(minus - both), sorted(plus - both), sorted(both))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--left", default="postgresql://postgres@127.0.0.1:5432/caiwei_bench_recon")
    parser.add_argument("--right", default="mysql://root@127.0.0.1:3306/caiwei_bench_recon")
    parser.add_argument("--reuse", action="store_true", help="表已在两边时不重建")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--reladiff", help="装有 reladiff 的虚拟环境里的 python 路径，给出时同一次运行中对照")
    parser.add_argument("--fetch-all", action="store_true", help="同时量“两边全量取回、Python 比较”的基线")
    parser.add_argument(
        "--md5", action="store_true", help="两边都是 PostgreSQL 时也用 MD5 行散列（不用快捷散列），对照用"
    )
    args = parser.parse_args()
    for url in (args.left, args.right):
        server_db(normalize_url(url))
    left, right = sa.create_engine(normalize_url(args.left)), sa.create_engine(normalize_url(args.right))
    if not args.reuse:
        started = time.perf_counter()
        build(left, args.rows, edited=False)
        build(right, args.rows, edited=True)
        print(f"建表：两边各 {args.rows:,} 行，右侧改 10 行，用时 {time.perf_counter() - started:.1f} 秒")

    print(
        f"左 {left.dialect.name} {left.url.database}，右 {right.dialect.name} {right.url.database}，表 {TABLE}"
    )
    for run in range(args.repeat):
        counted = count_both(left, right)
        started = time.perf_counter()
        result = diff_tables(left, right, TABLE, native_hash=not args.md5)
        took = time.perf_counter() - started
        got = (
            sorted(k[0] for k in result.only_left),
            sorted(k[0] for k in result.only_right),
            sorted(c.key[0] for c in result.changed),
        )
        s = result.stats
        print(
            f"第 {run + 1} 次：差异 {len(got[0])} 仅左、{len(got[1])} 仅右、{len(got[2])} 改动\n"
            f"  比对（校验和下推+二分）{took:.2f} 秒：取回逐行比较 {s.fetched_left}+{s.fetched_right} 行，"
            f"校验和结果 {s.checksum_rows} 行、查询 {s.checksum_queries} 次，{s.depth} 层；"
            f"左侧查询 {s.seconds_left:.2f} 秒、右侧 {s.seconds_right:.2f} 秒（同时进行）；"
            f"行哈希 {s.row_hash}{('（' + s.native_hash_off + '）') if s.native_hash_off else ''}\n"
            f"  基线 两边同时 COUNT(*) {counted:.2f} 秒，比对/COUNT(*) = {took / counted:.2f}"
        )
        if args.reladiff:
            columns = [
                c.name for c in sa.Table(TABLE, sa.MetaData(), autoload_with=left).columns if c.name != "id"
            ]
            taken, theirs = run_reladiff(args.reladiff, args.left, args.right, columns)
            agree = "一致" if theirs == got else f"不一致：{theirs}"
            print(f"  reladiff {taken:.2f} 秒（差异键与财维{agree}），reladiff/财维 = {taken / took:.2f}")
        if args.fetch_all:
            started = time.perf_counter()
            only_left, only_right, changed, fetched = baseline(left, right)
            base = time.perf_counter() - started
            assert got == (only_left, only_right, changed), (got, (only_left, only_right, changed))
            print(
                f"  两边全量取回、Python 比较 {base:.2f} 秒：取回 {fetched:,} 行，全量/财维 = {base / took:.1f}"
            )
    left.dispose()
    right.dispose()


if __name__ == "__main__":
    main()
