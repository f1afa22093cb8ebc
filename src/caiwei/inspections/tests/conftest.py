"""A real HTTP service on loopback for the automated probe item, and a plan of the league with a probe item and a
manual item (模拟业务操作)."""

from __future__ import annotations

import http.server
import io
import threading
from datetime import UTC, date, datetime

import pytest


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        status = 503 if self.path.startswith("/fail") else 200
        body = "系统运行正常".encode() if status == 200 else "维护中".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def http_service():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


LEAGUE = "152500000"
OLD = datetime(2020, 1, 1, tzinfo=UTC)  # plans made "long ago": their past slots are due


@pytest.fixture
def plan(regions, http_service):
    from caiwei.inspections.models import Plan, PlanItem
    from caiwei.monitor.models import Item

    probe = Item.objects.create(
        region=regions[LEAGUE],
        system="国库集中支付",
        name="支付前置服务",
        kind="http",
        config={"url": f"{http_service}/ok", "expect_status": "200"},
        timeout_s=5,
    )
    plan = Plan.objects.create(
        region=regions[LEAGUE],
        system="国库集中支付",
        name="支付系统日常巡检",
        valid_from=date(2020, 1, 1),
        created_at=OLD,
    )
    auto = PlanItem.objects.create(
        plan=plan, name="服务可用性", kind="probe", frequency="daily", times="09:00,15:00", position=0
    )
    auto.monitor_items.set([probe])
    PlanItem.objects.create(
        plan=plan,
        name="模拟业务操作",
        kind="manual",
        frequency="daily",
        times="09:00",
        instructions="录入一笔测试支付凭证并撤销",
        position=1,
    )
    return plan


def png_bytes() -> bytes:
    """A real PNG (a small chart) for the screenshot uploads."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([1, 2, 3], [2, 1, 3])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
