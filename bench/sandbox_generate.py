"""Sandbox generation speed: rows/second for 100 000 and 1 000 000 vouchers on SQLite and PostgreSQL, against a bare
bulk load of the same rows (COPY on PostgreSQL, executemany on SQLite) measured in the same run.

The baseline reads back every generated table and loads it, untouched, into an empty copy of the schema; only the
load is timed. The ratio says what generating (random choices, fault logic, derived rows) costs over writing.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import psycopg  # noqa: E402

from caiwei.sandbox.generator import BulkWriter, GenerateSpec, connect, generate, parse_faults  # noqa: E402
from caiwei.sandbox.schema import metadata  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def bare_load(source_url: str, target_url: str) -> tuple[int, float]:
    """Copy every table's rows from source to an empty target; time only the writes."""
    source, target = connect(source_url), connect(target_url)
    metadata.drop_all(target)
    metadata.create_all(target)
    total, elapsed = 0, 0.0
    with source.connect() as conn:
        for table in metadata.sorted_tables:
            columns = ", ".join(c.name for c in table.columns)
            rows = [tuple(r) for r in conn.exec_driver_sql(f"SELECT {columns} FROM {table.name}").all()]
            writer = BulkWriter(target, batch=50000)
            started = time.perf_counter()
            for row in rows:
                writer.add(table, row)
            writer.close()
            elapsed += time.perf_counter() - started
            total += len(rows)
            del rows
    source.dispose()
    target.dispose()
    return total, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dbs", default="sqlite,postgresql")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="caiwei-bench-"))
    print("数据库      凭证数      总行数     生成用时  生成 行/秒   裸装载 行/秒  比值（生成/裸装载）")
    for db in args.dbs.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            if db == "sqlite":
                url, bare_url = (
                    f"sqlite:///{tmp / f'gen-{size}.sqlite3'}",
                    f"sqlite:///{tmp / f'bare-{size}.sqlite3'}",
                )
            else:
                url, bare_url = pg_database("caiwei_bench_gen"), pg_database("caiwei_bench_bare")
            started = time.perf_counter()
            manifest = generate(url, GenerateSpec(payments=size, seed=1, faults=parse_faults("all=1")))
            gen_time = time.perf_counter() - started
            rows = sum(manifest.counts.values())
            bare_rows, bare_time = bare_load(url, bare_url)
            assert bare_rows == rows, (bare_rows, rows)
            print(
                f"{db:10}  {size:>9,}  {rows:>10,}  {gen_time:>8.1f}s  {rows / gen_time:>10,.0f}  "
                f"{rows / bare_time:>12,.0f}  {gen_time / bare_time:>6.2f}",
                flush=True,
            )
            for f in tmp.glob("*.sqlite3*"):
                f.unlink()


if __name__ == "__main__":
    main()
