"""Monitoring under load: 5 000 items probed every minute against local endpoints, on this 2-core machine.

- Endpoints: a separate process (so its CPU is not the monitor's) serves HTTP on one port and accepts TCP on ten
  more; half the items are HTTP(S)-style status probes, half TCP connects; 1 % point at a port nobody listens on
  (they go down, open alerts and incident tickets like real ones would).
- The monitor: ``probes.Scheduler`` with the platform's storing and judging (``services.record_results``: one INSERT
  per batch, each item's state, alert rules) for ``--minutes`` minutes. Reported: scheduling delay p50/p95/max (how
  late each probe started against its due time; goal p95 < 5 s), the monitor process's CPU share (CPU seconds of
  all its threads / wall seconds, of one core), results stored.
- Storage: rows and bytes of the raw results measured (PostgreSQL's relation sizes), extrapolated to a day; then
  the raw rows are moved back past the raw period and folded (``services.roll_up``), giving the hourly rows' size;
  the steady state is raw for 48 h plus the hourly rows, growing by one day of hourly rows per day.
- The status board's p50/p95 against a trivial authenticated page (the profile page), 10 clients through gunicorn
  (2 workers × 4 threads, as ``caiwei serve`` runs it); goal ≤ 3×.
"""

import argparse
import asyncio
import http.cookiejar
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
DB = "caiwei_bench_monitor"
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
PORT = 8793
PASSWORD = "Bench-Monitor-2026!"

ENDPOINTS = textwrap.dedent(
    """
    import asyncio, sys

    async def http(reader, writer):
        try:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 12\\r\\nConnection: close\\r\\n\\r\\nsystem is ok")
            await writer.drain()
        except Exception:
            pass
        writer.close()

    async def tcp(reader, writer):
        writer.close()

    async def main(base):
        servers = [await asyncio.start_server(http, "127.0.0.1", base, backlog=1024)]
        for i in range(1, 11):
            servers.append(await asyncio.start_server(tcp, "127.0.0.1", base + i, backlog=1024))
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(int(sys.argv[1])))
    """
)


def setup(items: int, base_port: int):
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ["DATABASE_URL"] = URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caiwei.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from caiwei.accounts import services as accounts
    from caiwei.accounts.roles import Role
    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod
    from caiwei.monitor.models import Item
    from caiwei.regions.demo import ensure_demo_regions
    from caiwei.regions.models import Region

    ensure_demo_regions()
    ensure_defaults(BusinessCalendar, KeyPeriod)
    user = accounts.create_user(None, username="bench_engineer", password=PASSWORD)
    accounts.set_roles(None, user, [Role.ENGINEER])
    accounts.set_regions(None, user, ["152500000"])
    regions = list(Region.objects.filter(path__startswith=Region.objects.get(code="152500000").path))
    systems = [
        "国库集中支付",
        "指标管理",
        "用款计划",
        "预算编制",
        "工资统发",
        "非税收入",
        "会计核算",
        "对账管理",
    ]
    rows = []
    for i in range(items):
        down = i % 100 == 99
        if i % 2 == 0:
            kind, config = "http", {"url": f"http://127.0.0.1:{base_port if not down else base_port + 50}/ok"}
        else:
            kind, config = (
                "tcp",
                {"host": "127.0.0.1", "port": base_port + 1 + (i % 10) if not down else base_port + 50},
            )
        rows.append(
            Item(
                region=regions[i % len(regions)],
                system=systems[i % len(systems)],
                name=f"监控项{i:05d}",
                kind=kind,
                config=config,
                interval_s=60,
                timeout_s=5,
                created_by=user,
            )
        )
    Item.objects.bulk_create(rows, batch_size=1000)
    return user


def table_bytes(table: str) -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
        return cursor.fetchone()


def run_scheduler(minutes: float, concurrency: int) -> dict:
    from django.db import connection

    from caiwei.monitor import probes, services
    from caiwei.monitor.models import Item

    items = {i.pk: i for i in Item.objects.select_related("region")}
    scheduled = [
        probes.Scheduled(pk, float(item.interval_s), (lambda item=item: services.build_probe(item)))
        for pk, item in items.items()
    ]
    stored = {"batches": 0, "seconds": 0.0}

    def store(batch):
        started = time.perf_counter()
        services.record_results(batch, items)
        stored["batches"] += 1
        stored["seconds"] += time.perf_counter() - started

    connection.close()
    wall, cpu = time.perf_counter(), time.process_time()
    stats = asyncio.run(
        probes.Scheduler(scheduled, store, concurrency, batch_seconds=1.0).run(duration=minutes * 60)
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "runs": stats.runs,
        "failures": stats.failures,
        "p50": statistics.median(stats.delays),
        "p95": stats.percentile(0.95),
        "max": max(stats.delays),
        "wall": wall,
        "cpu": cpu,
        "store_batches": stored["batches"],
        "store_seconds": stored["seconds"],
    }


def login(username: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{PORT}"
    page = opener.open(f"{base}/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
    opener.open(
        urllib.request.Request(f"{base}/login/", data=data.encode(), headers={"Referer": f"{base}/login/"})
    )
    return opener


def measure(path: str, clients: int, per_client: int, username: str) -> list[float]:
    openers = [login(username) for _ in range(clients)]

    def run(opener) -> list[float]:
        times = []
        for _ in range(per_client):
            started = time.perf_counter()
            with opener.open(f"http://127.0.0.1:{PORT}{path}") as response:
                response.read()
                assert response.status == 200
            times.append(time.perf_counter() - started)
        return times

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda o: o.open(f"http://127.0.0.1:{PORT}{path}").read(), openers))
        return [t for chunk in pool.map(run, openers) for t in chunk]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--base-port", type=int, default=18700)
    args = parser.parse_args()
    endpoints = subprocess.Popen(
        [sys.executable, "-c", ENDPOINTS, str(args.base_port)], stdout=subprocess.PIPE, text=True
    )
    assert endpoints.stdout.readline().strip() == "ready"
    try:
        user = setup(args.items, args.base_port)
        print(
            f"{args.items} 个监控项（每分钟一次，HTTP 与 TCP 各半，1% 指向无人监听的端口），运行 {args.minutes} 分钟……"
        )
        load = os.getloadavg()
        out = run_scheduler(args.minutes, args.concurrency)
        print(
            f"探测 {out['runs']} 次（失败 {out['failures']}），{out['runs'] / out['wall']:.1f} 次/秒；"
            f"调度延迟 p50 {out['p50']:.3f} 秒，p95 {out['p95']:.3f} 秒，最大 {out['max']:.3f} 秒"
        )
        print(
            f"监控进程 CPU {out['cpu']:.1f} 秒 / 墙钟 {out['wall']:.1f} 秒 = 单核的 {100 * out['cpu'] / out['wall']:.1f}%"
            f"（其中保存与判定 {out['store_batches']} 批，用时 {out['store_seconds']:.1f} 秒）；开始时负载 {load[0]:.2f}"
        )
        from django.db import connection

        from caiwei.desk.models import Ticket
        from caiwei.monitor import services
        from caiwei.monitor.models import Alert, Result, Rollup

        print(
            f"告警 {Alert.objects.count()} 条，故障工单 {Ticket.objects.filter(channel='inspection').count()} 张"
        )
        raw_rows, raw_bytes = table_bytes("monitor_result")
        per_day = raw_rows / out["wall"] * 86400
        bytes_per_row = raw_bytes / max(1, raw_rows)
        print(
            f"原始结果 {raw_rows} 行 {raw_bytes / 1e6:.1f} MB（每行约 {bytes_per_row:.0f} 字节含索引）；"
            f"折合每天 {per_day / 1e6:.2f} 百万行、{per_day * bytes_per_row / 1e9:.2f} GB"
        )
        # Fold: move the measured rows back past the raw period into distinct hours (one hour per measured minute),
        # as a day of results would be.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE monitor_result SET at = at - interval '3 days' "
                "- (extract(minute from at)::int * interval '1 hour')"
            )
        started = time.perf_counter()
        folded = services.roll_up()
        fold_seconds = time.perf_counter() - started
        roll_rows, roll_bytes = table_bytes("monitor_rollup")
        hourly_per_day = args.items * 24
        roll_per_row = roll_bytes / max(1, roll_rows)
        print(
            f"归并 {folded['raw_deleted']} 行原始结果为 {roll_rows} 行按小时数据，用时 {fold_seconds:.1f} 秒；"
            f"每行约 {roll_per_row:.0f} 字节含索引"
        )
        raw_kept = per_day * services.raw_hours() / 24 * bytes_per_row
        growth = hourly_per_day * roll_per_row
        print(
            f"归并后：原始结果保留 {services.raw_hours()} 小时约 {raw_kept / 1e9:.2f} GB（稳定，不增长），"
            f"按小时数据每天增长 {hourly_per_day} 行约 {growth / 1e6:.1f} MB，"
            f"保留 {services.rollup_days()} 天上限约 {growth * services.rollup_days() / 1e9:.2f} GB"
        )
        assert Result.objects.count() == 0 and Rollup.objects.count() == roll_rows
        # Put the states back as they were (the fold moved only history): the board shows the live run's states.
        connection.close()
        env = dict(os.environ, DATABASE_URL=URL, DJANGO_SETTINGS_MODULE="caiwei.settings")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "caiwei.wsgi:application",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/login/", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.2)
            trivial = measure("/accounts/me/", args.clients, args.requests, user.username)
            board = measure("/monitor/", args.clients, args.requests, user.username)
            ratio95 = pct(board, 95) / pct(trivial, 95)
            print(
                f"个人中心（对照）p50 {pct(trivial, 50):.0f} 毫秒，p95 {pct(trivial, 95):.0f} 毫秒；"
                f"状态总览 p50 {pct(board, 50):.0f} 毫秒，p95 {pct(board, 95):.0f} 毫秒；p95 为对照的 {ratio95:.2f} 倍"
            )
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        endpoints.terminate()
        endpoints.wait(timeout=10)


if __name__ == "__main__":
    main()
