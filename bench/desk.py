"""Service desk under load: 1 000 000 tickets in PostgreSQL, 20 concurrent clients on loopback.

Prints p50/p95 of the queue page and of the API list filtered by region and status, each as a ratio to a trivial
authenticated page (the profile page) measured in the same run, and the time of the SLA sweep over every open ticket
(`desk.escalation.sweep`, the worker's minute tick: evaluates each ticket's clocks and keeps its stored due and
queue instants current) — once after loading (it stores the instants of 50 000 tickets) and once in the steady
state. The server is gunicorn (2 workers × 4 threads) on this 2-core machine, as `caiwei serve` runs it.
`--reuse` keeps an already generated database (migrated to the current code) instead of loading it again.
"""

import argparse
import http.cookiejar
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
DB = "caiwei_bench_desk"
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
PORT = 8791
PASSWORD = "Bench-Desk-2026!"


def setup(count: int) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ["DATABASE_URL"] = URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caiwei.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from caiwei.accounts import services as accounts
    from caiwei.accounts.roles import Role
    from caiwei.desk import flow, services
    from caiwei.regions.demo import ensure_demo_regions
    from caiwei.regions.models import Region

    ensure_demo_regions()
    agent = accounts.create_user(None, username="bench_agent", password=PASSWORD)
    accounts.set_roles(None, agent, [Role.AGENT])
    accounts.set_regions(None, agent, ["152500000"])
    policy = services.apply_preset("xilingol")
    regions = list(Region.objects.filter(level__gte=2).values_list("pk", flat=True))
    rng = random.Random(1)
    start = datetime(2026, 1, 1, 8, 0).astimezone()
    statuses = (
        [flow.CLOSED] * 90
        + [flow.RESOLVED] * 5
        + [flow.NEW, flow.RESPONDED, flow.IN_PROGRESS, flow.WAITING, flow.CONFIRMING]
    )
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            "COPY desk_ticket (number, region_id, policy_id, channel, system, module, ticket_type, severity, title,"
            " description, status, tier, requester_kind, requester_name, requester_org, requester_phone, requester_email, opened_at,"
            " due_first_response, due_resolution) FROM STDIN"
        ) as copy,
    ):
        for i in range(count):
            opened = start + timedelta(minutes=rng.randrange(0, 330 * 24 * 60))
            copy.write_row(
                (
                    f"BM{i:012d}",
                    rng.choice(regions),
                    policy.pk,
                    "portal",
                    rng.choice(["国库集中支付", "指标管理", "用款计划", "工资统发"]),
                    "",
                    rng.choice(["咨询", "故障"]),
                    rng.choice(["一般"] * 8 + ["紧急", "重大"]),
                    f"演练工单 {i}",
                    "基准数据",
                    rng.choice(statuses),
                    "first",
                    "unit",
                    "经办人（演示）",
                    "",
                    "",
                    "",
                    opened,
                    opened + timedelta(hours=2),
                    opened + timedelta(days=3),
                )
            )
    print(f"装载 {count:,} 张工单用时 {time.perf_counter() - started:.1f} 秒")


def reuse() -> None:
    os.environ["DATABASE_URL"] = URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caiwei.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def vacuum() -> None:
    """As autovacuum leaves a table in production: statistics and the visibility map (index-only counts) current."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE desk_ticket")


def sla_sweep_time() -> tuple[int, float, float]:
    """(open tickets, wall seconds, CPU seconds of this process) of one sweep."""
    from caiwei.desk import escalation, flow
    from caiwei.desk.models import Ticket

    n = Ticket.objects.filter(status__in=flow.OPEN_STATUSES).count()
    started, cpu = time.perf_counter(), time.process_time()
    escalation.sweep()
    return n, time.perf_counter() - started, time.process_time() - cpu


def login() -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{PORT}"
    page = opener.open(f"{base}/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": "bench_agent", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    opener.open(
        urllib.request.Request(f"{base}/login/", data=data.encode(), headers={"Referer": f"{base}/login/"})
    )
    return opener


def measure(path: str, clients: int, per_client: int) -> list[float]:
    openers = [login() for _ in range(clients)]

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
        # Warm-up, not measured: both workers compile templates and build what they keep (calendars) first.
        list(pool.map(lambda o: o.open(f"http://127.0.0.1:{PORT}{path}").read(), openers))
        return [t for chunk in pool.map(run, openers) for t in chunk]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=15, help="requests per client per page")
    parser.add_argument("--reuse", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    if args.reuse:
        reuse()
    else:
        setup(args.tickets)
    _, first, _ = sla_sweep_time()
    vacuum()
    open_count, sweep, sweep_cpu = sla_sweep_time()
    load = os.getloadavg()
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
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        pages = {
            "基线：个人中心页": "/accounts/me/",
            "工单队列页（锡林浩特市，未办结）": "/desk/?region=152502000&status=open",
            "接口列表（锡林浩特市，未办结）": "/api/desk/tickets?region=152502000&status=open",
        }
        results = {name: measure(path, args.clients, args.requests) for name, path in pages.items()}
    finally:
        server.terminate()
        server.wait(timeout=20)
    base50, base95 = pct(results["基线：个人中心页"], 50), pct(results["基线：个人中心页"], 95)
    print(f"{args.tickets:,} 张工单，{args.clients} 个并发客户端，每页 {args.clients * args.requests} 次请求")
    for name, times in results.items():
        p50, p95 = pct(times, 50), pct(times, 95)
        print(
            f"{name}：p50 {p50:.0f} ms，p95 {p95:.0f} ms；对基线比值 p50 {p50 / base50:.2f}，p95 {p95 / base95:.2f}"
        )
    print(
        f"SLA 巡检：{open_count:,} 张未办结工单用时 {sweep:.1f} 秒（本进程 CPU {sweep_cpu:.1f} 秒，"
        f"{open_count / sweep:,.0f} 张/秒）；装载后首次巡检（写入各单的时限与预警、超时时刻）{first:.1f} 秒"
    )
    print(
        f"巡检时本机负载（1/5/15 分钟）：{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}，测量结束时 {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
