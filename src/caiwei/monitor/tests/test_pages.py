"""The pages and the API: who may do what is in web/policy.py (and its matrix test); here the flows — register an
item with a secret that is never shown again, bad input answered in Chinese naming the field, the board, the wall,
an item's history, rules, windows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from caiwei.monitor import services
from caiwei.monitor.models import AlertRule, Item, MaintenanceWindow

LEAGUE = "152500000"
pytestmark = pytest.mark.django_db


def test_register_an_item_the_secret_is_never_shown(users, regions, client_for, http_server):
    client = client_for(users["engineer"])
    assert client.get("/monitor/items/new/").status_code == 200
    response = client.post(
        "/monitor/items/new/",
        {
            "region": regions[LEAGUE].pk,
            "system": "国库集中支付",
            "name": "支付前置",
            "kind": "http",
            "config": json.dumps({"url": f"{http_server}/ok"}),
            "secret": "Very-Secret-Token-1",
            "interval_s": 60,
            "timeout_s": 5,
            "calendar": "workday",
            "enabled": "on",
        },
    )
    item = Item.objects.get(name="支付前置")
    assert response.status_code == 302 and item.secret.startswith("sm4gcm:")
    assert item.unsealed_secret() == "Very-Secret-Token-1"
    for url in (
        f"/monitor/items/{item.pk}/",
        f"/monitor/items/{item.pk}/edit/",
        f"/api/monitor/items/{item.pk}",
    ):
        body = client.get(url).content.decode()
        assert "Very-Secret-Token-1" not in body and "sm4gcm:" not in body
    assert client.post(f"/monitor/items/{item.pk}/run/").status_code == 302
    page = client.get(f"/monitor/items/{item.pk}/").content.decode()
    assert "history-data" in page and "状态码 200" in page
    board = client.get("/monitor/").content.decode()
    assert '<strong data-count="ok">1</strong>' in board and "全部正常" in board
    # a problem is listed by name, on the board, the wall and the board's refresh
    Item.objects.filter(pk=item.pk).update(state="down", last_message="连接被拒绝")
    for page in (
        client.get("/monitor/"),
        client.get("/monitor/wall/"),
        client.get("/monitor/", HTTP_HX_REQUEST="true"),
    ):
        body = page.content.decode()
        assert "支付前置" in body and 'data-state="down"' in body and "连接被拒绝" in body
    assert "<nav" not in client.get("/monitor/", HTTP_HX_REQUEST="true").content.decode()


def test_bad_input_is_answered_in_chinese_naming_the_field(users, regions, client_for, token_for, client):
    web = client_for(users["engineer"])
    page = web.post(
        "/monitor/items/new/",
        {
            "region": regions[LEAGUE].pk,
            "system": "国库集中支付",
            "name": "坏",
            "kind": "tcp",
            "config": "{不是 JSON",
            "interval_s": 5,
            "timeout_s": 5,
            "calendar": "workday",
        },
    )
    assert page.status_code == 200 and not Item.objects.filter(name="坏").exists()
    headers = token_for(users["engineer"])
    base = {"region": LEAGUE, "system": "国库集中支付", "name": "接口", "kind": "tcp"}
    for body, field in (
        ({**base, "config": {"host": "127.0.0.1"}}, "config"),
        ({**base, "config": {"host": "127.0.0.1", "port": 70000}}, "config"),
        ({**base, "kind": "smtp", "config": {}}, "kind"),
        ({**base, "system": "不存在的系统", "config": {}}, "system"),
        ({**base, "region": "999999999", "config": {}}, "region"),
        ({**base, "config": {"host": "127.0.0.1", "port": 22, "extra": 1}}, "config"),
    ):
        response = client.post(
            "/api/monitor/items", json.dumps(body), content_type="application/json", **headers
        )
        assert response.status_code == 400, response.content
        assert field in response.json()["errors"] and "：" in response.json()["detail"]
    short = client.post(
        "/api/monitor/items",
        json.dumps({**base, "config": {"host": "h", "port": 1}, "interval_s": 1}),
        content_type="application/json",
        **headers,
    )
    assert short.status_code == 422 and "interval_s" in short.content.decode()


def test_api_register_heartbeat_gives_the_token_once(users, regions, client, token_for):
    headers = token_for(users["pm"])
    body = {
        "region": LEAGUE,
        "system": "工资统发",
        "name": "工资批量",
        "kind": "heartbeat",
        "config": {"period_s": 3600},
    }
    response = client.post("/api/monitor/items", json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 201
    token = response.json()["heartbeat_token"]
    assert response.json()["heartbeat_url"].endswith(f"/monitor/hb/{token}")
    again = client.get(f"/api/monitor/items/{response.json()['id']}", **headers).content.decode()
    assert token not in again


def test_rules_and_windows_pages(users, regions, client_for, default_rules):
    client = client_for(users["pm"])
    assert "不可用" in client.get("/monitor/rules/").content.decode()  # the starting rules
    response = client.post(
        "/monitor/rules/new/",
        {
            "name": "响应很慢",
            "region": regions[LEAGUE].pk,
            "kind": "http",
            "metric": "latency_ms",
            "op": ">",
            "threshold": 800,
            "severity": "一般",
            "open_after": 3,
            "resolve_after": 2,
            "open_ticket": "on",
            "enabled": "on",
        },
    )
    assert response.status_code == 302 and AlertRule.objects.filter(name="响应很慢", threshold=800).exists()
    bad = client.post(
        "/monitor/rules/new/",
        {
            "name": "x",
            "metric": "latency_ms",
            "op": ">",
            "threshold": "很多",
            "severity": "一般",
            "open_after": 0,
            "resolve_after": 1,
        },
    )
    assert bad.status_code == 200 and not AlertRule.objects.filter(name="x").exists()
    start = timezone.localtime() + timedelta(hours=1)
    response = client.post(
        "/monitor/windows/new/",
        {
            "region": regions[LEAGUE].pk,
            "reason": "年结升级",
            "starts_at": start.strftime("%Y-%m-%d %H:%M"),
            "ends_at": (start - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"),
        },
    )
    assert response.status_code == 200 and "结束时间应晚于开始时间" in response.content.decode()
    assert not MaintenanceWindow.objects.exists()
    # finance staff see the board and the rules, and may not change them
    finance = client_for(users["finance"])
    assert finance.get("/monitor/").status_code == 200
    assert finance.get("/monitor/rules/new/").status_code == 403


def test_global_rule_is_kept_from_county_staff(users, regions, make_user, client_for, default_rules):
    county = make_user("m_county_pm", "pm", regions=("152502000",))
    rule = AlertRule.objects.filter(region__isnull=True).first()
    client = client_for(county)
    response = client.post(
        f"/monitor/rules/{rule.pk}/",
        {
            "name": "改掉",
            "metric": "up",
            "op": "=",
            "threshold": 0,
            "severity": "一般",
            "open_after": 1,
            "resolve_after": 1,
        },
    )
    assert response.status_code == 200 and "全辖" in response.content.decode()
    rule.refresh_from_db()
    assert rule.name != "改掉"
    assert services.covers_everything(users["pm"]) is True  # a league-wide grant is the whole tree here


def test_a_registered_database_is_probed_through_its_target(users, regions, client_for):
    """A database item names a registered target database (checks.TargetDatabase): the connection and its sealed
    password come from there, never from the item."""
    from caiwei.checks.models import Target, TargetDatabase

    target = Target.objects.create(name="国库支付系统", system="国库集中支付", region=regions[LEAGUE])
    database = TargetDatabase(
        target=target,
        name="业务库",
        dialect="postgresql",
        host="127.0.0.1",
        port=5432,
        database="postgres",
        username="postgres",
    )
    database.set_password("not-needed-on-loopback")
    database.save()
    item, _ = services.save_item(
        users["engineer"],
        Item(
            region=regions[LEAGUE],
            system="国库集中支付",
            name="业务库连接",
            kind="database",
            target_database=database,
            config={"query": "SELECT count(*) FROM pg_database"},
        ),
    )
    result = services.run_item_now(item)
    assert result.ok, result.message
    assert result.metrics["connections"] >= 1 and result.metrics["latency_ms"] >= 0
    body = client_for(users["engineer"]).get(f"/monitor/items/{item.pk}/").content.decode()
    assert "not-needed-on-loopback" not in body and "业务库连接" in body
    with pytest.raises(Exception, match="登记的目标数据库"):
        services.save_item(
            users["engineer"],
            Item(region=regions[LEAGUE], system="国库集中支付", name="无库", kind="database", config={}),
        )


def test_probing_from_code_that_runs_an_event_loop(users, regions, http_server):
    """An ASGI server or a browser driver runs a loop in the calling thread: probing still works (in a thread)."""
    import asyncio

    item, _ = services.save_item(
        users["engineer"],
        Item(
            region=regions[LEAGUE],
            system="国库集中支付",
            name="门户",
            kind="http",
            config={"url": f"{http_server}/ok"},
        ),
    )

    async def inside_a_loop():
        return services.probe_items([item])[0]

    assert asyncio.run(inside_a_loop()).ok
