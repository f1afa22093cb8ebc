import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...presets import PRESETS
from ...services import due
from ...sla import SEVERITIES, TYPES


class Command(BaseCommand):
    help = "服务台：due 按合同预设计算各时限的到期时间"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        d = sub.add_parser("due", help="首次响应、更新、解决三个时限的到期时间（ISO 8601；无要求为 null）")
        d.add_argument("--preset", required=True, choices=sorted(PRESETS))
        d.add_argument("--severity", required=True, choices=SEVERITIES)
        d.add_argument("--type", required=True, choices=TYPES)
        d.add_argument("--opened", required=True, help="受理时间，ISO 8601，如 2026-09-30T17:30+08:00")
        d.add_argument("--json", action="store_true", help="以 JSON 输出")
        sub.add_parser("sweep", help="按升级规则检查全部未办结工单（后台任务进程每分钟也会执行）")

    def handle(self, *args, action, **options):
        if action == "sweep":
            from ...escalation import sweep

            self.stdout.write(f"已触发 {sweep()} 次升级")
            return
        self.due(**options)

    def due(self, preset, severity, opened, **options):
        try:
            result = due(preset, severity, options["type"], opened)
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        labels = {"first_response": "首次响应", "update": "进展更新", "resolution": "解决"}
        for clock, value in result.items():
            self.stdout.write(f"{labels[clock]}：{value or '无要求'}")
