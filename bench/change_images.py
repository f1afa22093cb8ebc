"""Before-images cost: a 100 000-row UPDATE run by the data change engine (rows locked and read, before- and
after-images compressed and stored in the platform database chunk by chunk, count checked, marker, commit) against
the bare UPDATE of the same rows — same run, a fresh table each time. Prints the ratio (goal ≤ 1.5×).

    .venv/bin/python bench/change_images.py --rows 100000 --engines postgresql,mariadb
"""

import argparse
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import sqlalchemy as sa  # noqa: E402

from caiwei.dataops import changes as eng  # noqa: E402

URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/",
}
SQL = "UPDATE bench_pay SET status = 'fixed', amount = amount + 1 WHERE status = 'hold'"


def database(kind: str, name: str) -> sa.Engine:
    admin = sa.create_engine(
        URLS[kind] + ("postgres" if kind == "postgresql" else ""), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if kind == "postgresql":
            if not conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").scalar():
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        else:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {name}")
    admin.dispose()
    return sa.create_engine(URLS[kind] + name, poolclass=sa.pool.NullPool)


def fresh_table(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_pay")
        conn.exec_driver_sql(
            "CREATE TABLE bench_pay (id INTEGER PRIMARY KEY, voucher_no VARCHAR(30) NOT NULL, payee VARCHAR(60) NOT NULL, "
            "acct_no VARCHAR(30), amount DECIMAL(16, 2) NOT NULL, pay_date DATE NOT NULL, status VARCHAR(10) NOT NULL, "
            "agency_code VARCHAR(20) NOT NULL, memo VARCHAR(100))"
        )
        conn.exec_driver_sql("CREATE INDEX bench_pay_status ON bench_pay (status)")
        table = sa.Table("bench_pay", sa.MetaData(), autoload_with=conn)
        import datetime as dt

        batch = []
        for i in range(1, rows + 1):
            batch.append(
                {
                    "id": i,
                    "voucher_no": f"ZF2026{i:010d}",
                    "payee": f"收款单位{i % 5000:04d}",
                    "acct_no": f"6222{i:015d}",
                    "amount": Decimal(i % 100000) / 100 + 1,
                    "pay_date": dt.date(2026, 1 + i % 12, 1 + i % 28),
                    "status": "hold",
                    "agency_code": f"15250{i % 300:03d}",
                    "memo": "支付摘要" if i % 3 else None,
                }
            )
            if len(batch) == 20000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE bench_pay")
        else:
            conn.exec_driver_sql("ANALYZE TABLE bench_pay")
        conn.commit()


class PlatformStore:
    """Chunks and journal into PostgreSQL tables of the platform, as the Django store does: each journal step
    committed at once; each chunk written and committed by a writer thread on its own connection while the engine
    goes on, ``images_durable`` waiting for them all (before the target commits)."""

    def __init__(self, engine: sa.Engine):
        from concurrent.futures import ThreadPoolExecutor

        self.engine = engine
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_chunk")
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_journal")
            conn.exec_driver_sql(
                "CREATE TABLE bench_chunk (id SERIAL PRIMARY KEY, statement INT, kind VARCHAR(6), seq INT, rows INT, data BYTEA, sha256 CHAR(64))"
            )
            conn.exec_driver_sql(
                "CREATE TABLE bench_journal (id SERIAL PRIMARY KEY, step VARCHAR(20), detail TEXT)"
            )
        self.conn = engine.connect()
        self.writer_conn = engine.connect()
        self.writer = ThreadPoolExecutor(max_workers=1)
        self.writes: list = []
        self.bytes = 0

    def journal(self, step, detail):
        self.conn.exec_driver_sql(
            "INSERT INTO bench_journal (step, detail) VALUES (%s, %s)", (step, str(detail))
        )
        self.conn.commit()

    def _write(self, chunk):
        self.writer_conn.exec_driver_sql(
            "INSERT INTO bench_chunk (statement, kind, seq, rows, data, sha256) VALUES (%s, %s, %s, %s, %s, %s)",
            chunk,
        )
        self.writer_conn.commit()

    def add_chunk(self, statement, kind, seq, rows, data, digest):
        self.writes.append(self.writer.submit(self._write, (statement, kind, seq, rows, data, digest)))
        self.bytes += len(data)

    def images_durable(self):
        writes, self.writes = self.writes, []
        for write in writes:
            write.result()

    def close(self):
        self.writer.shutdown(wait=True)
        self.writer_conn.close()
        self.conn.close()


def bare(engine: sa.Engine) -> tuple[float, int]:
    started = time.perf_counter()
    with engine.connect() as conn:
        n = conn.exec_driver_sql(SQL).rowcount
        conn.commit()
    return time.perf_counter() - started, n


def with_images(engine: sa.Engine, store: PlatformStore, rows: int) -> tuple[float, int]:
    review = eng.review(SQL, engine, rules=eng.Rules(max_rows=rows * 2))
    assert review.ok, review.errors
    started = time.perf_counter()
    outcome = eng.execute(
        engine, review.statements, store, token=uuid.uuid4().hex, change_ref="bench", expected=[rows]
    )
    seconds = time.perf_counter() - started
    assert outcome.state == "applied", outcome.message
    return seconds, outcome.rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="postgresql,mariadb")
    args = parser.parse_args()
    platform = database("postgresql", "caiwei_change_bench_platform")
    for kind in args.engines.split(","):
        engine = database(kind, "caiwei_change_bench")
        plain, imaged = [], []
        for _ in range(args.repeat):
            fresh_table(engine, args.rows)
            seconds, n = bare(engine)
            assert n == args.rows
            plain.append(seconds)
            fresh_table(engine, args.rows)
            store = PlatformStore(platform)
            seconds, n = with_images(engine, store, args.rows)
            assert n == args.rows
            imaged.append(seconds)
            store.close()
        a, b = statistics.median(plain), statistics.median(imaged)
        print(
            f"{kind}：{args.rows} 行 UPDATE，裸执行 {a:.2f} 秒，带前后镜像 {b:.2f} 秒，比值 {b / a:.2f}×"
            f"（镜像压缩后 {store.bytes / 1e6:.1f} MB；各次 裸 {', '.join(f'{x:.2f}' for x in plain)}，镜像 {', '.join(f'{x:.2f}' for x in imaged)}）"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
