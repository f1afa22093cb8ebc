"""Crash trials of data changes (caiwei.dataops.crashtrial): on PostgreSQL and on MariaDB, N executions and M
rollbacks, each run in a child process (`caiwei data change execute|rollback`) killed with SIGKILL at a journal
step (CAIWEI_CHANGE_KILL_AT) or after a random delay; recovery after each; the table checked row by row.

    .venv/bin/python bench/change_crash.py --executions 100 --rollbacks 20
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))


def _database(url: str) -> None:
    import sqlalchemy as sa

    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(
        base + ("/postgres" if url.startswith("postgresql") else "/"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if url.startswith("postgresql"):
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        else:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--rollbacks", type=int, default=20)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="postgresql,mariadb")
    parser.add_argument(
        "--pause", type=float, default=0.15, help="每步之后暂停的秒数（让随机时刻的杀进程落在事务中）"
    )
    parser.add_argument(
        "--platform", default="postgresql+psycopg://postgres@127.0.0.1:5432/caiwei_change_crash"
    )
    args = parser.parse_args()
    _database(args.platform)
    os.environ["DATABASE_URL"] = args.platform.replace("postgresql+psycopg", "postgres")
    os.environ.setdefault("CAIWEI_VAR", tempfile.mkdtemp(prefix="caiwei-bench-crash-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caiwei.settings")
    os.environ["PYTHONPATH"] = str(SRC)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from caiwei.accounts import services as accounts
    from caiwei.accounts.roles import Role
    from caiwei.audit.context import acting_as
    from caiwei.checks.models import Target, TargetDatabase
    from caiwei.dataops import crashtrial
    from caiwei.regions.demo import ensure_demo_regions
    from caiwei.regions.models import Region

    ensure_demo_regions()
    region = Region.objects.get(code="152500000")

    def user(name, role):
        u = accounts.create_user(None, username=name, password="Crash-Trial-2026!")
        accounts.set_roles(None, u, [role])
        accounts.set_regions(None, u, ["152500000"])
        return u

    author, approver = user("crash_engineer", Role.ENGINEER), user("crash_approver", Role.FINANCE_APPROVER)
    servers = {
        "postgresql": (
            "postgresql",
            "127.0.0.1",
            5432,
            "postgres",
            "postgresql+psycopg://postgres@127.0.0.1:5432/caiwei_change_crash_target",
        ),
        "mariadb": (
            "mysql",
            "127.0.0.1",
            3306,
            "root",
            "mysql+pymysql://root@127.0.0.1:3306/caiwei_change_crash_target",
        ),
    }
    results = []
    for name in args.engines.split(","):
        dialect, host, port, username, url = servers[name]
        _database(url)
        target = Target.objects.create(name=f"崩溃试验 {name}", system="国库集中支付", region=region)
        database = TargetDatabase.objects.create(
            target=target,
            name="业务库",
            dialect=dialect,
            host=host,
            port=port,
            username=username,
            database="caiwei_change_crash_target",
            read_only=False,
        )
        engine = database.engine()
        started = time.perf_counter()
        with acting_as(author, "bench"):
            tally = crashtrial.run(
                database,
                engine,
                author,
                approver,
                label=name,
                executions=args.executions,
                rollbacks=args.rollbacks,
                seed=args.seed,
                rows=args.rows,
                pause=args.pause,
            )
        results.append((tally, time.perf_counter() - started))
    print()
    for tally, seconds in results:
        print(f"{tally.line()}，用时 {seconds:.0f} 秒")
        for p in tally.problems[:20]:
            print("  问题：", p)
    sys.exit(1 if any(t.problems for t, _ in results) else 0)


if __name__ == "__main__":
    main()
