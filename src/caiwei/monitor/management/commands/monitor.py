"""``caiwei monitor run|status|rollup``: probe the inventory (once, or as a long-running scheduler), show the state
of every item and the open alerts, fold old results into hourly rows."""

import asyncio
import json

from django.core.management.base import BaseCommand, CommandError

from ... import probes, services
from ...models import Alert, Item


class Command(BaseCommand):
    help = (
        "监控：run 探测到期的监控项（--once 只跑一轮；否则常驻，按各项间隔调度）；status 列出各监控项状态与未恢复告警；"
        "rollup 把超过保留期的原始结果归并为按小时数据"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="探测监控项")
        run.add_argument("--once", action="store_true", help="只探测一轮到期的监控项后退出")
        run.add_argument("--all", action="store_true", help="与 --once 同用：不论是否到期，全部探测一次")
        run.add_argument("--concurrency", type=int, default=100, help="同时进行的探测数（默认 100）")
        run.add_argument(
            "--reload", type=int, default=300, help="常驻时每隔多少秒重新读取监控清单（默认 300）"
        )
        status = sub.add_parser("status", help="各监控项状态与未恢复告警")
        status.add_argument("--json", action="store_true", help="以 JSON 输出")
        sub.add_parser("rollup", help="归并旧的探测结果")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "status":
            return self.status(options["json"])
        if action == "rollup":
            out = services.roll_up()
            self.stdout.write(
                f"归并 {out['rollups']} 个小时段，删除原始结果 {out['raw_deleted']} 条、过期小时数据 {out['rollups_deleted']} 条"
            )
            return None
        if options["concurrency"] < 1:
            raise CommandError("--concurrency 应至少为 1")
        if options["once"]:
            if options["all"]:
                Item.objects.filter(enabled=True).update(next_due_at=None)
            count = services.run_due(limit=100000, concurrency=options["concurrency"])
            self.stdout.write(f"已探测 {count} 个监控项")
            return self.status(False)
        return self.daemon(options["concurrency"], options["reload"])

    def daemon(self, concurrency: int, reload: int) -> None:
        self.stdout.write(f"监控调度已启动：并发 {concurrency}，每 {reload} 秒重读清单（Ctrl+C 退出）")
        try:
            while True:
                items = {
                    i.pk: i
                    for i in Item.objects.filter(enabled=True).select_related("region", "target_database")
                }
                scheduled = [
                    probes.Scheduled(
                        pk, float(item.interval_s), (lambda item=item: services.build_probe(item))
                    )
                    for pk, item in items.items()
                ]

                def store(batch, items=items):
                    services.record_results(batch, items)
                    from django.db import connection

                    connection.close()

                stats = asyncio.run(probes.Scheduler(scheduled, store, concurrency).run(duration=reload))
                self.stdout.write(
                    f"本轮探测 {stats.runs} 次，失败 {stats.failures} 次，调度延迟 95% 分位 {stats.percentile(0.95):.2f} 秒"
                )
        except KeyboardInterrupt:
            self.stdout.write("已停止")

    def status(self, as_json: bool) -> None:
        items = Item.objects.select_related("region").order_by("region__path", "system", "name")
        alerts = Alert.objects.filter(status=Alert.Status.OPEN).select_related("item", "rule", "ticket")
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "items": [
                            {
                                "id": i.pk,
                                "name": i.name,
                                "region": i.region.code,
                                "kind": i.kind,
                                "state": i.state,
                                "last_at": i.last_at.isoformat() if i.last_at else None,
                                "message": i.last_message,
                            }
                            for i in items
                        ],
                        "alerts": [
                            {
                                "item": a.item.name,
                                "rule": a.rule.name,
                                "severity": a.severity,
                                "ticket": a.ticket.number if a.ticket_id else None,
                            }
                            for a in alerts
                        ],
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
            return
        for i in items:
            self.stdout.write(
                f"{i.get_state_display():<4}\t{i.region.name}\t{i.system}\t{i.name}\t{i.last_message}"
            )
        self.stdout.write(f"共 {items.count()} 项；未恢复告警 {alerts.count()} 条")
        for a in alerts:
            ticket = f"，工单 {a.ticket.number}" if a.ticket_id else ""
            self.stdout.write(f"  【{a.severity}】{a.item.name}：{a.rule.name}{ticket}")
