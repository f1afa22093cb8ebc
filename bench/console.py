"""查询台 overhead: per console query, the time of review + masking (parse, lineage through scopes, classification,
rendering, value masking of the cells) against the same SQL run bare on the sandbox (PostgreSQL), over a set of
typical queries. Prints ms added per query (goal ≤ 10 ms) and added / bare.

Run: .venv/bin/python bench/console.py [--db postgresql+psycopg://postgres@127.0.0.1:5432/caiwei_console_bench]
     [--payments 20000] [--repeat 30] [--keep]   (--keep: reuse the sandbox already generated at --db)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import sqlalchemy as sa  # noqa: E402

from caiwei.dataops import console  # noqa: E402

QUERIES = {
    "一人按身份证号查询": "SELECT person_id, person_name, iden_no, status FROM person_info WHERE iden_no = '{id}'",
    "某单位人员（SELECT *）": "SELECT * FROM person_info WHERE agency_code = '{agency}'",
    "收款人与凭证关联": (
        "SELECT v.pay_app_no, v.pay_amt, v.payee_acct_no, p.payee_acct_name, p.acct_kind FROM pay_voucher v "
        "JOIN pay_payee_info p ON p.payee_acct_no = v.payee_acct_no WHERE v.agency_code = '{agency}' "
        "ORDER BY v.pay_app_date DESC LIMIT 200"
    ),
    "按单位汇总支付": (
        "SELECT agency_code, count(*) AS n, sum(pay_amt) AS amt FROM pay_voucher GROUP BY agency_code ORDER BY amt DESC"
    ),
    "CTE + 窗口函数": (
        "WITH v AS (SELECT agency_code, pay_app_date, pay_amt, payee_acct_no FROM pay_voucher WHERE fiscal_year = 2026) "
        "SELECT agency_code, pay_app_date, payee_acct_no, sum(pay_amt) OVER (PARTITION BY agency_code ORDER BY "
        "pay_app_date) AS running FROM v ORDER BY agency_code, pay_app_date LIMIT 200"
    ),
    "UNION ALL 两类账号": (
        "SELECT account_no AS acct, agency_code FROM agency_account UNION ALL "
        "SELECT payee_acct_no, agency_code FROM pay_payee_info LIMIT 200"
    ),
    "相关子查询": (
        "SELECT a.agency_code, a.agency_name, (SELECT count(*) FROM person_info p WHERE p.agency_code = "
        "a.agency_code) AS people FROM ele_agency a ORDER BY a.agency_code"
    ),
    "凭证明细前 200 行": "SELECT * FROM pay_voucher ORDER BY pay_app_id LIMIT 200",
}
LIMIT = 200


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/caiwei_console_bench")
    parser.add_argument("--payments", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not args.keep:
        admin = sa.create_engine(args.db.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        name = args.db.rsplit("/", 1)[1]
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        from caiwei.sandbox.generator import GenerateSpec, generate

        started = time.monotonic()
        generate(args.db, GenerateSpec(payments=args.payments, seed=1))
        print(f"演练库生成：{args.payments} 笔支付，{time.monotonic() - started:.1f} 秒")
    engine = sa.create_engine(args.db)
    schema = console.logical_schema()
    classes = console.default_classification(schema)
    with engine.connect() as conn:
        some_id = conn.execute(sa.text("SELECT iden_no FROM person_info ORDER BY person_id LIMIT 1")).scalar()
        agency = conn.execute(
            sa.text("SELECT agency_code FROM pay_voucher GROUP BY agency_code ORDER BY count(*) DESC LIMIT 1")
        ).scalar()
    print(
        f"{'查询':<16} {'审查':>7} {'脱敏':>7} {'增加':>7} {'裸跑':>8} {'增加/裸跑':>9} {'行数':>5}  （毫秒，{args.repeat} 次中位数）"
    )
    added_all, bare_all = [], []
    with engine.connect() as conn:
        for label, template in QUERIES.items():
            sql = template.format(id=some_id, agency=agency)
            reviews, masks, bares = [], [], []
            rows = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                plan = console.review(sql, "postgresql", schema, classes, limit=LIMIT)
                t1 = time.perf_counter()
                assert plan.ok, (label, plan)
                # bare: the same SQL (as reviewed and rendered), same connection, same fetch size
                t2 = time.perf_counter()
                raw = conn.exec_driver_sql(plan.sql).fetchmany(LIMIT + 1)
                t3 = time.perf_counter()
                conn.rollback()
                rows = [tuple(r) for r in raw]
                t4 = time.perf_counter()
                console.mask_rows(plan, rows[:LIMIT])
                t5 = time.perf_counter()
                reviews.append((t1 - t0) * 1000)
                bares.append((t3 - t2) * 1000)
                masks.append((t5 - t4) * 1000)
            r, m, b = statistics.median(reviews), statistics.median(masks), statistics.median(bares)
            added_all.append(r + m)
            bare_all.append(b)
            print(f"{label:<16} {r:7.2f} {m:7.2f} {r + m:7.2f} {b:8.2f} {(r + m) / b:9.2f} {len(rows):5d}")
    # the whole path once per query, as the console runs it (read-only transaction, timeout, streaming cursor)
    sessions = []
    for template in QUERIES.values():
        plan = console.review(
            template.format(id=some_id, agency=agency), "postgresql", schema, classes, limit=LIMIT
        )
        t0 = time.perf_counter()
        result = console.execute(engine, plan, limit=LIMIT, timeout_s=30)
        sessions.append((time.perf_counter() - t0) * 1000)
        assert not result.error, result.error
    engine.dispose()
    mean_added = statistics.mean(added_all)
    print(
        f"平均每条查询增加 {mean_added:.2f} 毫秒（最大 {max(added_all):.2f}，目标 ≤ 10），"
        f"裸跑平均 {statistics.mean(bare_all):.2f} 毫秒，增加/裸跑 {mean_added / statistics.mean(bare_all):.2f}；"
        f"完整执行（只读事务、超时设置、流式游标、脱敏）平均 {statistics.mean(sessions):.2f} 毫秒"
    )


if __name__ == "__main__":
    main()
