import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ... import services


class Command(BaseCommand):
    help = "业务日历：due 计算 N 个工作分钟后的到期时间；between 计算两时刻之间的工作分钟数"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        due = sub.add_parser("due")
        due.add_argument("--calendar", default="workday")
        due.add_argument("--start", required=True, help="ISO 8601，如 2026-09-30T17:30+08:00")
        due.add_argument("--minutes", type=int, required=True)
        between = sub.add_parser("between")
        between.add_argument("--calendar", default="workday")
        between.add_argument("--start", required=True)
        between.add_argument("--end", required=True)

    def handle(self, *args, action, calendar, start, **options):
        try:
            if action == "due":
                result = services.due(calendar, start, options["minutes"])
            else:
                result = services.between(calendar, start, options["end"])
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc
        self.stdout.write(json.dumps(result, ensure_ascii=False))
