"""Alerts against real services: a stopped consumer on a bank queue, a missing day of bank files and a sequence gap
each raise exactly one incident ticket, resolved when fixed; flapping, maintenance windows, group robots, the
heartbeat route, /metrics and the roll-ups."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pika
import pytest
from django.utils import timezone

from caiwei.desk.models import Notification, Ticket
from caiwei.monitor import probes, services
from caiwei.monitor.models import Alert, AlertRule, Item, MaintenanceWindow, Result, Rollup, State, Webhook

from .conftest import Handler, free_port

CHINA = ZoneInfo("Asia/Shanghai")
LEAGUE = "152500000"


def make_item(users, regions, kind, config, secret="", **kw) -> Item:
    services.ensure_default_rules()
    kw.setdefault("name", f"{kind}-{Item.objects.count() + 1}")
    item = Item(region=regions[LEAGUE], system="国库集中支付", kind=kind, config=config, **kw)
    saved, _ = services.save_item(users["engineer"], item, secret=secret)
    return saved


def incidents():
    return Ticket.objects.filter(channel=Ticket.Channel.INSPECTION)


class Consumer:
    """A bank's consumer of its voucher queue, in a thread with its own connection; ``stop`` closes it."""

    def __init__(self, queue: str):
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/"))
        channel = self.connection.channel()
        channel.basic_consume(queue, lambda ch, method, props, body: ch.basic_ack(method.delivery_tag))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while self.connection.is_open:
                self.connection.process_data_events(time_limit=0.2)
        except (pika.exceptions.AMQPError, OSError):
            pass

    def stop(self):
        self.connection.add_callback_threadsafe(self.connection.close)
        self.thread.join(timeout=10)


def wait_consumers(config: dict, count: int, seconds: float = 30) -> None:
    """The management API's queue figures trail the broker (its statistics interval): wait until they show
    ``count`` consumers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = probes.run_sync(probes.Probe("rabbitmq", config, secret="guest"))
        if result.metrics.get("consumers") == count:
            return
        time.sleep(0.5)
    pytest.fail(f"管理接口在 {seconds} 秒内未显示 {count} 个消费者")


@pytest.mark.django_db(transaction=True)
def test_stopped_consumer_on_a_bank_queue_raises_one_incident(users, regions, rabbit_api):
    queue = f"caiwei.monitor.accept.{os.getpid()}.B102.voucher"
    setup = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/"))
    channel = setup.channel()
    channel.queue_declare(queue)
    config = {"api": rabbit_api, "queue": queue, "username": "guest"}
    consumer = Consumer(queue)
    try:
        item = make_item(users, regions, "rabbitmq", config, secret="guest", name="中国银行凭证队列")
        wait_consumers(config, 1)
        assert services.run_item_now(item).metrics["consumers"] == 1
        consumer.stop()
        wait_consumers(config, 0)
        rule = AlertRule.objects.get(metric="consumers")
        for _ in range(
            rule.open_after + 2
        ):  # the first breaching result does not open it; later ones fold in
            services.run_item_now(item)
        alert = Alert.objects.get(item=item)
        assert alert.status == Alert.Status.OPEN and alert.rule == rule and alert.hits == 3
        assert incidents().count() == 1
        ticket = incidents().get()
        assert alert.ticket == ticket and ticket.ticket_type == "故障" and ticket.severity == rule.severity
        assert ticket.due_resolution is not None  # the SLA clocks apply
        item.refresh_from_db()
        assert item.state == State.ALERT
        consumer = Consumer(queue)
        wait_consumers(config, 1)
        for _ in range(rule.resolve_after):
            services.run_item_now(item)
        alert.refresh_from_db()
        ticket.refresh_from_db()
        assert alert.status == Alert.Status.RESOLVED and ticket.status == "resolved"
        assert incidents().count() == 1
        assert Notification.objects.filter(ticket=ticket, text__contains="已恢复").exists()
    finally:
        consumer.stop()
        channel.queue_delete(queue)
        setup.close()


def business_day_after(spec, start: date) -> date:
    from caiwei.bizcalendar.engine import is_business_day

    day = start
    while not is_business_day(spec, day):
        day += timedelta(days=1)
    return day


@pytest.mark.django_db
def test_missing_day_of_bank_files_raises_one_incident(users, regions, tmp_path, settings):
    settings.CAIWEI_MONITOR_FILE_DIR = str(tmp_path)
    folder = tmp_path / "B102"
    folder.mkdir()
    item = make_item(
        users,
        regions,
        "freshness",
        {
            "source": "dir",
            "directory": str(folder),
            "pattern": "B102_*.txt",
            "mode": "daily",
            "deadline": "10:00",
        },
        name="中国银行日终文件",
    )
    spec = services.calendar_spec("workday")
    day = business_day_after(spec, date(2026, 11, 23))
    now = datetime.combine(day, datetime.min.time(), CHINA).replace(hour=11)
    yesterday = (now - timedelta(days=1)).timestamp()
    (folder / "B102_yesterday.txt").write_text("x")
    os.utime(folder / "B102_yesterday.txt", (yesterday, yesterday))
    result = services.run_item_now(item, now=now)
    assert result.metrics == {"count": 0, "expected": 1, "fresh": 0, "up": 1}
    services.run_item_now(item, now=now + timedelta(minutes=1))
    assert Alert.objects.filter(item=item, status=Alert.Status.OPEN).count() == 1
    assert incidents().count() == 1
    today = (now - timedelta(minutes=20)).timestamp()
    (folder / "B102_today.txt").write_text("x")
    os.utime(folder / "B102_today.txt", (today, today))
    services.run_item_now(item, now=now + timedelta(minutes=2))
    alert = Alert.objects.get(item=item)
    assert alert.status == Alert.Status.RESOLVED and alert.ticket.status == "resolved"
    assert incidents().count() == 1


@pytest.mark.django_db
def test_sequence_gap_raises_one_incident_and_a_resend_resolves_it(users, regions, tmp_path, settings):
    settings.CAIWEI_MONITOR_FILE_DIR = str(tmp_path)
    journal = tmp_path / "journal.jsonl"

    def write(seqs):
        journal.write_text(
            "".join(
                json.dumps(
                    {
                        "direction": "voucher",
                        "bank": "B102",
                        "seq": s,
                        "pay_cert_no": f"C{s}",
                        "time": "2026-11-25T10:00:00",
                    }
                )
                + "\n"
                for s in seqs
            )
        )

    write([1, 2, 3, 5, 6])
    item = make_item(
        users, regions, "sequence", {"path": str(journal), "bank": "B102"}, name="中国银行报文序号"
    )
    for _ in range(3):
        services.run_item_now(item)
    alert = Alert.objects.get(item=item)
    assert alert.status == Alert.Status.OPEN and alert.severity == "重大" and "缺第 4 号" in alert.message
    assert incidents().count() == 1 and incidents().get().severity == "重大"
    write([1, 2, 3, 5, 6, 4])  # the missing voucher resent
    services.run_item_now(item)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.ticket.status == "resolved"
    # the gap comes back (a new one): a new alert, and its ticket is a new one since the first was resolved
    write([1, 2, 3, 4, 5, 6, 8])
    services.run_item_now(item)
    assert Alert.objects.filter(item=item).count() == 2 and incidents().count() == 2


@pytest.mark.django_db
def test_flapping_is_suppressed_and_an_open_ticket_is_reused(users, regions, http_server):
    item = make_item(users, regions, "tcp", {"host": "127.0.0.1", "port": free_port()}, name="前置机端口")
    rule = AlertRule.objects.get(metric="up")
    assert rule.open_after == 2 and rule.resolve_after == 2
    up_port = int(http_server.rsplit(":", 1)[1])
    down_port = item.config["port"]
    for port in [down_port, up_port] * 4:  # down, up, down, up …: never two in a row
        Item.objects.filter(pk=item.pk).update(config={"host": "127.0.0.1", "port": port})
        item.refresh_from_db()
        services.run_item_now(item)
    assert not Alert.objects.filter(item=item).exists()
    item.config = {"host": "127.0.0.1", "port": down_port}
    Item.objects.filter(pk=item.pk).update(config=item.config)
    services.run_item_now(item)
    services.run_item_now(item)
    first = Alert.objects.get(item=item)
    assert first.status == Alert.Status.OPEN
    # someone keeps the ticket open (waiting for the user): a recovery comments it but cannot resolve it
    from caiwei.desk import flow
    from caiwei.desk import services as desk

    desk.change_status(users["engineer"], first.ticket, flow.WAITING)
    Item.objects.filter(pk=item.pk).update(config={"host": "127.0.0.1", "port": up_port})
    item.refresh_from_db()
    services.run_item_now(item)
    services.run_item_now(item)
    first.refresh_from_db()
    assert first.status == Alert.Status.RESOLVED and first.ticket.status == flow.WAITING
    Item.objects.filter(pk=item.pk).update(config={"host": "127.0.0.1", "port": down_port})
    item.refresh_from_db()
    services.run_item_now(item)
    services.run_item_now(item)
    second = Alert.objects.filter(item=item, status=Alert.Status.OPEN).get()
    assert second.ticket == first.ticket and incidents().count() == 1  # the still-open ticket takes it
    assert first.ticket.comments.filter(body__contains="再次触发").exists()


@pytest.mark.django_db
def test_maintenance_window_silences(users, regions):
    item = make_item(users, regions, "tcp", {"host": "127.0.0.1", "port": free_port()}, name="维护中的端口")
    window = MaintenanceWindow(
        region=regions[LEAGUE],
        reason="数据库升级",
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() + timedelta(minutes=30),
    )
    services.save_window(users["engineer"], window, [item])
    for _ in range(4):
        services.run_item_now(item)
    item.refresh_from_db()
    assert item.state == State.PAUSED and not Alert.objects.exists() and not incidents().exists()
    MaintenanceWindow.objects.filter(pk=window.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    services.run_item_now(item)
    assert not Alert.objects.exists()  # the window's results were not counted: one failure so far
    services.run_item_now(item)
    assert Alert.objects.filter(status=Alert.Status.OPEN).count() == 1


@pytest.mark.django_db
def test_group_robot_and_in_app_notification(users, regions, http_server):
    Handler.posts.clear()
    hook = Webhook(region=regions[LEAGUE], name="运维群", kind="wecom")
    services.save_webhook(users["engineer"], hook, f"{http_server}/robot?key=secret-key")
    quiet = Webhook(region=regions[LEAGUE], name="领导群", kind="dingtalk", min_severity="重大")
    services.save_webhook(users["engineer"], quiet, f"{http_server}/robot?key=other")
    item = make_item(users, regions, "heartbeat", {"period_s": 60, "grace_s": 10}, name="日终批处理")
    Item.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(hours=1))
    item.refresh_from_db()
    services.run_item_now(item)
    services.run_item_now(item)
    assert Alert.objects.filter(item=item, status=Alert.Status.OPEN).count() == 1
    bodies = [json.loads(b) for b in Handler.posts]
    assert len(bodies) == 1  # the 重大-only robot is not told of a 紧急 alert
    assert bodies[0]["msgtype"] == "text" and "日终批处理" in bodies[0]["text"]["content"]
    assert Notification.objects.filter(user=users["engineer"], text__contains="日终批处理").exists()
    assert "secret-key" not in json.dumps(list(Webhook.objects.values()), default=str)


@pytest.mark.django_db
def test_heartbeat_route_does_not_tell_which_tokens_exist(users, regions, client):
    item, token = services.save_item(
        users["engineer"],
        Item(
            region=regions[LEAGUE],
            system="工资统发",
            name="工资批量",
            kind="heartbeat",
            config={"period_s": 3600},
        ),
    )
    assert token and item.heartbeat_hash and token not in json.dumps(list(Item.objects.values()), default=str)
    known = client.post(f"/monitor/hb/{token}")
    unknown = client.post(f"/monitor/hb/{token[:-1]}x")
    assert known.status_code == unknown.status_code == 200 and known.content == unknown.content
    assert client.get(f"/monitor/hb/{token}").status_code == 200
    item.refresh_from_db()
    assert item.last_ping_at is not None
    assert services.run_item_now(item).ok


@pytest.mark.django_db
def test_metrics_endpoint_with_a_token(users, regions, client, token_for, http_server):
    item = make_item(users, regions, "http", {"url": f"{http_server}/ok"}, name="预算一体化门户")
    services.run_item_now(item)
    assert client.get("/api/monitor/metrics").status_code == 401
    response = client.get("/api/monitor/metrics", **token_for(users["agent"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert f'caiwei_monitor_state{{item="{item.pk}"' in text and 'metric="status"} 200' in text
    assert client.get("/api/monitor/metrics", **token_for(users["unit"])).status_code == 403


@pytest.mark.django_db
def test_roll_up_keeps_hourly_min_avg_max(users, regions, settings):
    settings.CAIWEI_MONITOR_RAW_HOURS = 48
    item = make_item(users, regions, "tcp", {"host": "127.0.0.1", "port": 1}, name="归并")
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    old_hour = (now - timedelta(hours=50)).replace(minute=0)
    values = [10.0, 20.0, 60.0]
    Result.objects.bulk_create(
        [
            Result(item=item, at=old_hour + timedelta(minutes=10 * i), ok=i != 1, value=v)
            for i, v in enumerate(values)
        ]
        + [Result(item=item, at=now - timedelta(hours=1), ok=True, value=5.0)]
    )
    out = services.roll_up(now)
    assert out["raw_deleted"] == 3 and Result.objects.filter(item=item).count() == 1
    row = Rollup.objects.get(item=item)
    assert (row.count, row.failures, row.min_value, row.max_value) == (3, 1, 10.0, 60.0)
    assert row.avg_value == pytest.approx(30.0)
    assert services.roll_up(now)["raw_deleted"] == 0  # idempotent
    points = services.history(item, hours=72)
    assert [p["value"] for p in points] == [pytest.approx(30.0), 5.0]


@pytest.mark.django_db
def test_latest_results_for_inspections(users, regions, http_server):
    up = make_item(users, regions, "http", {"url": f"{http_server}/ok"}, name="门户")
    never = make_item(users, regions, "tcp", {"host": "127.0.0.1", "port": 1}, name="未探测")
    result = services.run_item_now(up)
    latest = services.latest_results([up, never])
    assert latest[never.pk] is None
    assert latest[up.pk].ok and latest[up.pk].metrics["status"] == result.metrics["status"] == 200


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_stores_and_judges_through_the_platform(users, regions, http_server):
    """The long-running scheduler (``caiwei monitor run``) with the platform's storing: results land in the database
    from its worker threads, the last batch too, and each item's state moves on."""
    import asyncio

    port = int(http_server.rsplit(":", 1)[1])
    up = make_item(users, regions, "tcp", {"host": "127.0.0.1", "port": port}, name="前置机", interval_s=10)
    down = make_item(
        users, regions, "tcp", {"host": "127.0.0.1", "port": free_port()}, name="备机", interval_s=10
    )
    items = {i.pk: i for i in Item.objects.select_related("region")}
    scheduled = [probes.Scheduled(pk, 0.5, (lambda i=i: services.build_probe(i))) for pk, i in items.items()]
    stats = asyncio.run(
        probes.Scheduler(scheduled, lambda b: services.record_results(b, items), 4).run(duration=1.6)
    )
    assert Result.objects.count() == stats.runs >= 6
    assert Result.objects.filter(item=down, ok=False).count() == Result.objects.filter(item=down).count() >= 3
    up.refresh_from_db()
    down.refresh_from_db()
    assert up.state == State.OK and down.state == State.DOWN
    assert Alert.objects.filter(item=down, status=Alert.Status.OPEN).count() == 1 and incidents().count() == 1


@pytest.mark.django_db
def test_local_files_only_inside_the_monitoring_directory(users, regions, tmp_path, settings):
    """Journals and local file drops are read only inside CAIWEI_MONITOR_FILE_DIR, at saving and at each probe."""
    from django.core.exceptions import ValidationError

    root = tmp_path / "monitor-files"
    root.mkdir()
    settings.CAIWEI_MONITOR_FILE_DIR = str(root)
    for config in ({"path": "/etc/passwd"}, {"path": str(root / ".." / "x.jsonl")}):
        with pytest.raises(ValidationError) as caught:
            make_item(users, regions, "sequence", config, name="越界")
        assert "监控文件目录" in str(caught.value.message_dict["config"])
    with pytest.raises(ValidationError):
        make_item(users, regions, "freshness", {"source": "dir", "directory": "/etc"}, name="越界目录")
    (root / "j.jsonl").write_text("")
    item = make_item(users, regions, "sequence", {"path": str(root / "j.jsonl")}, name="界内")
    (root / "j.jsonl").unlink()
    (root / "j.jsonl").symlink_to("/etc/hostname")  # swapped for a link out after saving
    result = services.run_item_now(item)
    assert not result.ok and "监控文件目录" in result.message


@pytest.mark.django_db
def test_an_alert_with_nobody_to_act_still_opens_its_ticket(users, regions, monkeypatch):
    """No registrant who may work tickets and no engineer in the region: the platform opens the incident itself,
    with the desk's own numbering and due times, instead of alerting without a ticket."""
    item = make_item(users, regions, "tcp", {"host": "127.0.0.1", "port": free_port()}, name="无人值守端口")
    monkeypatch.setattr(services, "_actor", lambda item: None)
    services.run_item_now(item)
    services.run_item_now(item)
    alert = Alert.objects.get(item=item)
    assert alert.ticket is not None and alert.ticket.created_by is None
    assert (
        alert.ticket.number and alert.ticket.policy_id is not None and alert.ticket.due_resolution is not None
    )
    assert incidents().count() == 1
    services.run_item_now(item)  # still down: the open ticket stands, no second one
    assert incidents().count() == 1
