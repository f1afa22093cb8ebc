"""Audit chain cost: appending N events through caiwei.audit.log.record vs the same rows INSERTed bare,
and verifying the chain vs streaming the same columns bare. Prints both ratios."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/caiwei_bench")
    args = parser.parse_args()
    if args.db.startswith("postgres"):
        import psycopg

        admin = args.db.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            name = args.db.rsplit("/", 1)[1]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = args.db
    # Seals belong to one installation's database: a scratch var directory, so the seals of ./var (another
    # database) are not compared with this one.
    os.environ.setdefault("CAIWEI_VAR", tempfile.mkdtemp(prefix="caiwei-bench-audit-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caiwei.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0)
    from caiwei.audit.log import record
    from caiwei.audit.models import AuditAction
    from caiwei.audit.verify import verify_chain

    n = args.rows
    detail = {"note": "基准", "n": 0}

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE bench_plain AS SELECT * FROM audit_auditevent WHERE 1 = 0")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for i in range(n):
            with transaction.atomic():
                cursor.execute(
                    "INSERT INTO bench_plain (id, seq, at, action, actor, actor_id, ip, request_id, source, object_type,"
                    " object_id, object_repr, before, after, detail, prev_hash, hash)"
                    " VALUES (%s, %s, now(), 'admin', 'bench', NULL, NULL, '', 'cli', 'bench', %s, '', NULL, NULL,"
                    " %s, '', '')",
                    [i + 1, i + 1, str(i), '{"note": "基准"}'],
                )
    bare_insert = time.perf_counter() - started

    started = time.perf_counter()
    for i in range(n):
        detail["n"] = i
        record(AuditAction.ADMIN, object_type="bench", object_id=str(i), detail=detail)
    chain_insert = time.perf_counter() - started

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditevent ORDER BY seq")
        count = 0
        while rows := cursor.fetchmany(5000):
            count += len(rows)
    bare_read = time.perf_counter() - started

    started = time.perf_counter()
    checked, broken = verify_chain()
    verify = time.perf_counter() - started
    assert broken is None and checked >= n, broken

    vendor = connection.vendor
    print(f"数据库：{vendor}，行数：{n}")
    print(
        f"追加：caiwei 审计链 {n / chain_insert:,.0f} 行/秒；裸 INSERT（逐条事务）{n / bare_insert:,.0f} 行/秒；"
        f"比值 {chain_insert / bare_insert:.2f}"
    )
    print(
        f"校验：caiwei audit verify {checked / verify:,.0f} 行/秒；裸 SELECT 流式读 {count / bare_read:,.0f} 行/秒；"
        f"比值 {verify / bare_read:.2f}"
    )


if __name__ == "__main__":
    main()
