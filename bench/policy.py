"""Route policy overhead: the same requests with PolicyMiddleware in the stack and without it, in one run.

PostgreSQL, 2 000 tickets over the demo regions, a county agent; in-process Django test client (no network), so what
is measured is the middleware's own work: resolving the declared rule, the capability check and, for routes that
name an object, one EXISTS query over the user's reachable set. Prints the median per request and the ratio
(with policy / without) for a ticket page, the ticket API and the ticket list API.

Run: .venv/bin/python bench/policy.py [--tickets 2000] [--requests 300]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
DB = "caiwei_bench_policy"
PASSWORD = "Xq7-Fin-Ops-4412!"


def setup(count: int):
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caiwei.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from caiwei.accounts import services as accounts
    from caiwei.accounts.roles import Role
    from caiwei.desk import services
    from caiwei.regions.demo import ensure_demo_regions
    from caiwei.regions.models import Region

    ensure_demo_regions()
    services.apply_preset("xilingol")
    agent = accounts.create_user(None, username="bench_policy", password=PASSWORD)
    accounts.set_roles(None, agent, [Role.AGENT])
    accounts.set_regions(None, agent, ["152500000"])
    agent.refresh_from_db()
    regions = list(Region.objects.filter(code__in=["152501000", "152502000", "152522000"]))
    numbers = []
    for i in range(count):
        ticket = services.create_ticket(
            agent,
            region=regions[i % len(regions)],
            system="国库集中支付",
            ticket_type="故障",
            severity="一般",
            title=f"基准工单 {i}",
            description="基准",
            requester_name="演练联系人",
        )
        numbers.append(ticket.number)
    return agent, numbers


def measure(agent, urls: list[str], with_policy: bool) -> float:
    from django.conf import settings
    from django.test import Client, override_settings

    stack = [m for m in settings.MIDDLEWARE if with_policy or m != "caiwei.web.middleware.PolicyMiddleware"]
    with override_settings(MIDDLEWARE=stack, ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(agent)
        for url in urls[:20]:  # warm-up
            client.get(url)
        times = []
        for url in urls:
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    agent, numbers = setup(args.tickets)
    n = args.requests
    cases = {
        "工单页 /desk/<工单号>/": [f"/desk/{numbers[i * 7 % len(numbers)]}/" for i in range(n)],
        "工单接口 /api/desk/tickets/<工单号>": [
            f"/api/desk/tickets/{numbers[i * 7 % len(numbers)]}" for i in range(n)
        ],
        "工单列表接口 /api/desk/tickets?limit=50": ["/api/desk/tickets?limit=50"] * n,
    }
    print(f"{args.tickets} 张工单，每项 {n} 次请求，取中位数（毫秒）")
    print(f"{'请求':<40} {'无权限中间件':>12} {'有权限中间件':>12} {'比值':>8}")
    for label, urls in cases.items():
        # Alternate the order so neither side always runs on a warmer cache.
        bare1 = measure(agent, urls, with_policy=False)
        policy = measure(agent, urls, with_policy=True)
        bare2 = measure(agent, urls, with_policy=False)
        bare = (bare1 + bare2) / 2
        print(f"{label:<40} {bare * 1000:>12.2f} {policy * 1000:>12.2f} {policy / bare:>8.2f}")


if __name__ == "__main__":
    main()
