"""Shared pieces of the data change tests: scratch target databases on this machine's PostgreSQL and MariaDB (and a
SQLite file), a table of generated accounts, and an in-memory store for the engine."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
import sqlalchemy as sa

from caiwei.conftest import scratch_db

TARGET_DB = scratch_db("caiwei_changes_target")
SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/",
}


def server_url(kind: str, name: str = TARGET_DB) -> str:
    """A database ``name`` on the server ``kind``, created when absent."""
    base = SERVERS[kind]
    admin = sa.create_engine(
        base + ("postgres" if kind == "postgresql" else ""), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            if kind == "postgresql":
                if not conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").scalar():
                    conn.exec_driver_sql(f"CREATE DATABASE {name}")
            else:
                conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4")
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"数据库不可用：{exc}")
    finally:
        admin.dispose()
    return base + name


ACCOUNT = """CREATE TABLE {name} (
  id INTEGER PRIMARY KEY,
  payee VARCHAR(60) NOT NULL,
  acct_no VARCHAR(30),
  amount DECIMAL(14, 2) NOT NULL,
  pay_date DATE,
  status VARCHAR(10) NOT NULL
)"""


def make_accounts(engine: sa.Engine, rows: int = 200, name: str = "chg_account") -> None:
    """A fresh table of ``rows`` generated payments: ids 1..rows, amounts with cents, every tenth row 'hold'."""
    import datetime as dt

    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(ACCOUNT.format(name=name))
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        conn.execute(
            table.insert(),
            [
                {
                    "id": i,
                    "payee": f"收款人{i:05d}",
                    "acct_no": f"62220000{i:011d}",
                    "amount": Decimal(i * 7 % 1000) + Decimal("0.25"),
                    "pay_date": dt.date(2026, 1 + i % 12, 1 + i % 28),
                    "status": "hold" if i % 10 == 0 else "paid",
                }
                for i in range(1, rows + 1)
            ],
        )


def rows_of(engine: sa.Engine, name: str = "chg_account") -> dict[int, tuple]:
    with engine.connect() as conn:
        return {r[0]: tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id")}


class MemoryStore:
    """The engine's Store in memory: the journal in order and the chunks by (statement, kind)."""

    def __init__(self):
        self.steps: list[tuple[str, dict]] = []
        self.chunks: dict[tuple[int, str], list[tuple[bytes, str]]] = {}
        self.durable_at: int | None = None

    def journal(self, step: str, detail: dict) -> None:
        self.steps.append((step, detail))

    def add_chunk(self, statement, kind, seq, rows, data, digest) -> None:
        bucket = self.chunks.setdefault((statement, kind), [])
        assert seq == len(bucket)
        bucket.append((data, digest))
        self.durable_at = None  # a chunk not yet durable

    def images_durable(self) -> None:
        self.durable_at = len(self.steps)  # the journal step that came next

    def source(self, statement: int, kind: str):
        return iter(self.chunks.get((statement, kind), []))

    @property
    def names(self) -> list[str]:
        return [s for s, _ in self.steps]
