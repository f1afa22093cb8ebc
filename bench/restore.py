"""Range restore of one table against ``pg_restore -t`` of the same table alone (PostgreSQL, same run).

A table of N rows (default 1 000 000) and a small second table are backed up with ``pg_dump --format=custom``
(caiwei.dataops.backup); then some rows are changed, deleted and added. Timed, each from the same backup file:

- caiwei's range restore: the table, its data and its primary key into a staging database (pg_restore -L with the
  table's entries of the archive) plus the checksum-bisection diff against today's table (recon/diff.py);
- the baseline: ``pg_restore -t <table>`` into an empty database, nothing else (no key, no comparison).

    .venv/bin/python bench/restore.py [--rows 1000000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from caiwei.dataops import backup as engine  # noqa: E402
from caiwei.dataops import restore as restorer  # noqa: E402

SOURCE, STAGE, BASELINE = (
    "caiwei_bench_restore_src",
    "caiwei_bench_restore_stage",
    "caiwei_bench_restore_base",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=300, help="rows changed, deleted and added (each)")
    parser.add_argument(
        "--clustered",
        action="store_true",
        help="change rows of one id range instead of rows spread over the table",
    )
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url = sa.make_url(args.url)
    server = engine.Conn(
        "postgresql",
        url.database or "postgres",
        url.host or "",
        url.port,
        url.username or "",
        url.password or "",
    )
    for name in (SOURCE, STAGE, BASELINE):
        restorer.drop_database(server, name)
    source = restorer.create_database(server, SOURCE)
    e = source.engine()
    started = time.perf_counter()
    with e.begin() as c:
        c.exec_driver_sql(
            "CREATE TABLE vouchers (id bigint PRIMARY KEY, region varchar(12) NOT NULL, payee varchar(100), "
            "amount numeric(18,2), paid_on date, note text)"
        )
        c.exec_driver_sql(
            "INSERT INTO vouchers SELECT g, (ARRAY['152501000','152502000','152503000'])[1 + mod(g, 3)], "
            "'收款人' || g, mod(g::bigint * 7919, 10000000) / 100.0, DATE '2026-01-01' + mod(g, 365), md5(g::text) "
            f"FROM generate_series(1, {args.rows}) g"
        )
        c.exec_driver_sql("CREATE TABLE agencies (code varchar(20) PRIMARY KEY, name varchar(100))")
        c.exec_driver_sql("INSERT INTO agencies SELECT 'A' || g, '单位' || g FROM generate_series(1, 1000) g")
        c.exec_driver_sql("ANALYZE")
    print(f"生成 {args.rows:,} 行：{time.perf_counter() - started:.1f} 秒")
    with tempfile.TemporaryDirectory() as folder:
        result = engine.backup(source, Path(folder) / "bench.dump")
        print(f"pg_dump：{result.seconds:.1f} 秒，{result.size / 1e6:.1f} MB，行数 {result.counts}")
        n, k = args.rows, args.changes
        with e.begin() as c:
            if args.clustered:  # the rows of one id range: an operator's mistake on one unit's vouchers
                lo = n // 2
                c.exec_driver_sql(
                    f"UPDATE vouchers SET payee = payee || '改' WHERE id BETWEEN {lo} AND {lo + k - 1}"
                )
                c.exec_driver_sql(f"DELETE FROM vouchers WHERE id BETWEEN {lo + k} AND {lo + 2 * k - 1}")
            else:  # spread over the whole table: every bucket of the diff differs
                c.exec_driver_sql(
                    f"UPDATE vouchers SET payee = payee || '改' WHERE mod(id, {max(1, n // k)}) = 1"
                )
                c.exec_driver_sql(f"DELETE FROM vouchers WHERE mod(id, {max(1, n // k)}) = 2")
            c.exec_driver_sql(
                f"INSERT INTO vouchers SELECT {n} + g, '152501000', '新增', 1, DATE '2026-12-31', '' "
                f"FROM generate_series(1, {k}) g"
            )
        live = e
        print(
            f"改动：{'集中在一段主键' if args.clustered else '分散在全表'}，改 {k} 行、删 {k} 行、增 {k} 行"
        )
        started = time.perf_counter()
        staging = restorer.restore_table(server, result.path, "vouchers", STAGE)
        staged = time.perf_counter() - started
        stage_engine = staging.engine()
        before_diff = time.perf_counter()
        differ = restorer.RangeDiff(stage_engine, live, "vouchers")  # reflects both tables
        prepared = time.perf_counter() - before_diff
        diff = differ.run()
        ours = time.perf_counter() - started
        stage_engine.dispose()
        print(
            f"按范围恢复（临时库 + 主键 + 比对）：{ours:.2f} 秒（其中恢复到临时库 {staged:.2f} 秒，读取表结构 {prepared:.2f} 秒，比对 {diff.stats.seconds:.2f} 秒）；"
            f"内容不同 {len(diff.changed)}，仅在备份中 {len(diff.only_left)}，仅在当前库 {len(diff.only_right)}，"
            f"比对取回 {diff.stats.rows_fetched:,} 行"
        )
        restorer.create_database(server, BASELINE)
        started = time.perf_counter()
        subprocess.run(
            [
                engine.tool("pg_restore"),
                *server.pg_args(),
                "--no-owner",
                "--no-privileges",
                "-t",
                "vouchers",
                "-d",
                BASELINE,
                result.path,
            ],
            env=server.tool_env(),
            check=True,
        )
        base = time.perf_counter() - started
        print(f"pg_restore -t vouchers 到空库（无主键、不比对）：{base:.2f} 秒")
        print(f"比值（按范围恢复 / pg_restore -t）：{ours / base:.2f}")
    e.dispose()
    for name in (SOURCE, STAGE, BASELINE):
        restorer.drop_database(server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
