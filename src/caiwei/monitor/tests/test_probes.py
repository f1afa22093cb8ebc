"""Each probe kind against the real service on loopback, up and down (a port nobody listens on, a stopped server,
a wrong answer); a dead target never holds the others up."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pika
import pytest

from caiwei.monitor import probes
from caiwei.monitor.probes import Probe, run_sync

from .conftest import free_port

PG = os.environ.get("CAIWEI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB = os.environ.get("CAIWEI_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/mysql")


def test_http_up_text_status_and_down(http_server):
    up = run_sync(Probe("http", {"url": f"{http_server}/ok", "expect_text": "运行正常"}))
    assert (
        up.ok and up.metrics["status"] == 200 and up.metrics["text_ok"] == 1 and up.metrics["latency_ms"] > 0
    )
    wrong_text = run_sync(Probe("http", {"url": f"{http_server}/ok", "expect_text": "不存在的文字"}))
    assert not wrong_text.ok and wrong_text.metrics["text_ok"] == 0 and "预期文字" in wrong_text.message
    failing = run_sync(Probe("http", {"url": f"{http_server}/fail"}))
    assert not failing.ok and failing.metrics["status"] == 503
    down = run_sync(Probe("http", {"url": f"http://127.0.0.1:{free_port()}/"}, timeout=3))
    assert not down.ok and down.metrics == {"up": 0} and "拒绝" in down.message
    slow = run_sync(Probe("http", {"url": f"{http_server}/slow"}, timeout=0.5))
    assert not slow.ok and slow.message == "超时未应答"


def test_https_certificate_days(https_server):
    url, cafile = https_server
    result = run_sync(Probe("http", {"url": f"{url}/ok", "cafile": cafile}))
    assert result.ok and 18.5 < result.metrics["cert_days"] <= 20
    tls = run_sync(
        Probe("tls", {"host": "localhost", "port": int(url.rsplit(":", 1)[1]), "verify_tls": False})
    )
    assert tls.ok and 18.5 < tls.metrics["cert_days"] <= 20
    untrusted = run_sync(Probe("http", {"url": f"{url}/ok"}))  # not in the system's trust store
    assert not untrusted.ok and "证书" in untrusted.message


def test_tcp_up_and_down(http_server):
    port = int(http_server.rsplit(":", 1)[1])
    assert run_sync(Probe("tcp", {"host": "127.0.0.1", "port": port})).ok
    assert not run_sync(Probe("tcp", {"host": "127.0.0.1", "port": free_port()})).ok


@pytest.mark.parametrize("url", [PG, MARIADB], ids=["postgresql", "mariadb"])
def test_database_query_latency_and_connections(url):
    result = run_sync(Probe("database", {"url": url, "query": "SELECT 1"}, timeout=10))
    assert result.ok, result.message
    assert result.metrics["latency_ms"] >= 0 and result.metrics["connections"] >= 1
    bad_query = run_sync(Probe("database", {"url": url, "query": "SELECT * FROM no_such_table_here"}))
    assert not bad_query.ok
    port = free_port()
    down = run_sync(
        Probe("database", {"url": url.replace(url.split("@")[1].split("/")[0], f"127.0.0.1:{port}")})
    )
    assert not down.ok


def test_postgresql_primary_reports_no_replication_lag():
    result = run_sync(Probe("database", {"url": PG}))
    assert "replication_lag_s" not in result.metrics  # a primary: the lag is NULL, not a number


def test_redis_info_up_and_down():
    result = run_sync(Probe("redis", {"host": "127.0.0.1", "port": 6379}))
    assert result.ok and result.metrics["clients"] >= 1 and result.metrics["used_memory_mb"] > 0
    assert not run_sync(Probe("redis", {"host": "127.0.0.1", "port": free_port()})).ok


def test_rabbitmq_queue_depth_consumers_unacked(rabbit_api):
    queue = f"caiwei.monitor.test.{os.getpid()}"
    connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/"))
    channel = connection.channel()
    try:
        channel.queue_declare(queue, auto_delete=False)
        for i in range(3):
            channel.basic_publish("", queue, f"m{i}".encode())
        config = {"api": rabbit_api, "queue": queue, "username": "guest"}
        deadline = time.monotonic() + 15
        while True:  # the management API's figures trail the broker by its stats interval
            result = run_sync(Probe("rabbitmq", config, secret="guest"))
            if result.ok and result.metrics.get("messages") == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert result.ok and result.metrics["messages"] == 3 and result.metrics["consumers"] == 0
        missing_queue = run_sync(Probe("rabbitmq", {**config, "queue": queue + ".none"}, secret="guest"))
        assert not missing_queue.ok and "不存在" in missing_queue.message
        wrong_password = run_sync(Probe("rabbitmq", config, secret="wrong"))
        assert not wrong_password.ok
        down = run_sync(
            Probe("rabbitmq", {**config, "api": f"http://127.0.0.1:{free_port()}"}, secret="guest")
        )
        assert not down.ok
    finally:
        channel.queue_delete(queue)
        connection.close()


def test_sftp_latest_file_age(sshd, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "B102_20261125.txt").write_text("x")
    os.utime(folder / "B102_20261125.txt", (time.time() - 7200, time.time() - 7200))
    (folder / "B102_20261126.txt").write_text("x")
    os.utime(folder / "B102_20261126.txt", (time.time() - 600, time.time() - 600))
    (folder / "other.csv").write_text("x")
    config = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": os.environ.get("USER") or __import__("getpass").getuser(),
        "directory": str(folder),
        "pattern": "B102_*.txt",
        "host_key": sshd.fingerprint,
    }
    key = sshd.client_key.read_text()
    result = run_sync(Probe("sftp", config, secret=key))
    assert result.ok, result.message
    assert result.metrics["files"] == 2 and 590 <= result.metrics["latest_age_s"] < 700
    forged = run_sync(Probe("sftp", {**config, "host_key": "SHA256:" + "A" * 43}, secret=key))
    assert not forged.ok and "指纹" in forged.message
    assert not run_sync(Probe("sftp", {**config, "port": free_port()}, secret=key)).ok


def test_ftp_latest_file_age(ftp_server):
    port, folder = ftp_server
    (folder / "B103_daily.txt").write_text("x")
    os.utime(folder / "B103_daily.txt", (time.time() - 3600, time.time() - 3600))
    config = {"host": "127.0.0.1", "port": port, "username": "bank", "directory": "out", "pattern": "B103_*"}
    result = run_sync(Probe("ftp", config, secret="Bank-Ftp-2026"))
    assert result.ok, result.message
    assert result.metrics["files"] == 1 and 3590 <= result.metrics["latest_age_s"] < 3700
    assert not run_sync(Probe("ftp", config, secret="wrong")).ok
    assert not run_sync(Probe("ftp", {**config, "port": free_port()}, secret="x")).ok


def test_host_from_node_exporter(node_exporter):
    result = run_sync(Probe("host", {"url": node_exporter, "mount": "/"}))
    assert result.ok, result.message
    assert 0 <= result.metrics["mem_used_pct"] <= 100 and 0 < result.metrics["disk_used_pct"] <= 100
    assert result.metrics["load_per_cpu"] >= 0 and 0 <= result.metrics["cpu_busy_pct"] <= 100
    assert not run_sync(Probe("host", {"url": f"http://127.0.0.1:{free_port()}/metrics"})).ok


def test_host_over_ssh(sshd):
    config = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": os.environ.get("USER") or __import__("getpass").getuser(),
        "host_key": sshd.fingerprint,
    }
    result = run_sync(Probe("host_ssh", config, secret=sshd.client_key.read_text(), timeout=15))
    assert result.ok, result.message
    with open("/proc/meminfo") as handle:
        assert "MemAvailable" in handle.read()
    assert 0 <= result.metrics["mem_used_pct"] <= 100 and 0 < result.metrics["disk_used_pct"] <= 100


def test_promql_instant_query(prometheus):
    result = run_sync(Probe("promql", {"api": prometheus, "query": 'up{job="node"}'}))
    assert result.ok and result.metrics["value"] == 1
    bad = run_sync(Probe("promql", {"api": prometheus, "query": "up{"}))
    assert not bad.ok and "Prometheus" in bad.message
    empty = run_sync(Probe("promql", {"api": prometheus, "query": 'up{job="none"}', "empty_is_down": True}))
    assert not empty.ok
    assert not run_sync(Probe("promql", {"api": f"http://127.0.0.1:{free_port()}", "query": "up"})).ok


def test_sequence_gaps_and_duplicates(tmp_path):
    journal = tmp_path / "mq.jsonl"
    records = [
        {
            "direction": "voucher",
            "bank": "B102",
            "seq": s,
            "pay_cert_no": f"C{s}",
            "time": "2026-11-25T10:00:00+08:00",
        }
        for s in (1, 2, 3, 5, 6, 6, 9)
    ] + [
        {"direction": "voucher", "bank": "B103", "seq": s, "pay_cert_no": "x", "time": "2026-11-25T10:00:00"}
        for s in (1, 3)
    ]
    journal.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    result = run_sync(Probe("sequence", {"path": str(journal), "bank": "B102"}))
    assert result.metrics["gaps"] == 3 and result.metrics["duplicates"] == 1  # 4, 7, 8 missing; 6 twice
    assert "缺第 4、7、8 号" in result.message
    everyone = run_sync(Probe("sequence", {"path": str(journal)}))
    assert everyone.metrics["gaps"] == 4
    assert not run_sync(Probe("sequence", {"path": str(tmp_path / "none.jsonl")})).ok


def test_heartbeat_period_and_grace():
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    late = run_sync(
        Probe(
            "heartbeat",
            {"period_s": 3600, "grace_s": 300, "last_ping": now - timedelta(seconds=3901), "now": now},
        )
    )
    assert not late.ok and late.metrics["since_ping_s"] == 3901
    fine = run_sync(
        Probe(
            "heartbeat",
            {"period_s": 3600, "grace_s": 300, "last_ping": now - timedelta(seconds=3899), "now": now},
        )
    )
    assert fine.ok


def test_a_dead_target_does_not_hold_the_others(http_server):
    """Forty probes of a black hole (accepts, never answers) and one healthy: all finish within the timeout."""
    import socket

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(100)
    port = hole.getsockname()[1]
    try:
        probes_ = [Probe("http", {"url": f"http://127.0.0.1:{port}/"}, timeout=1) for _ in range(40)]
        # the healthy one may take its time on a loaded machine (two test workers on two cores), but never waits
        # for the forty: all finish in about one dead timeout, not forty of them
        probes_.append(Probe("http", {"url": f"{http_server}/ok"}, timeout=4))
        started = time.monotonic()
        results = asyncio.run(probes.run_many(probes_, concurrency=50))
        assert time.monotonic() - started < 6
        assert [r.ok for r in results] == [False] * 40 + [True]
    finally:
        hole.close()


def test_scheduler_runs_each_item_at_its_interval(http_server):
    """Ten items every 0.5 s for 2.2 s: each runs 4–5 times, nothing starts more than a fraction of a second late."""
    port = int(http_server.rsplit(":", 1)[1])
    seen: list = []
    items = [
        probes.Scheduled(i, 0.5, lambda: Probe("tcp", {"host": "127.0.0.1", "port": port}, timeout=1))
        for i in range(10)
    ]
    stats = asyncio.run(
        probes.Scheduler(items, seen.extend, concurrency=5, batch_seconds=0.2).run(duration=2.2)
    )
    counts = {k: sum(1 for r in seen if r.key == k) for k in range(10)}
    assert all(4 <= c <= 5 for c in counts.values()), counts
    assert stats.runs == len(seen) and stats.failures == 0 and stats.percentile(0.95) < 0.3
