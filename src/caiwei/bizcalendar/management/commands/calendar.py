import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ... import services


class Command(BaseCommand):
    help = (
        "业务日历：due 计算 N 个工作分钟后的到期时间；between 计算两时刻之间的工作分钟数；"
        "import-notice 导入国务院办公厅节假日安排通知；status 列出缺少放假调休安排的年份"
    )

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
        imp = sub.add_parser(
            "import-notice", help="导入通知（每行“日期 类型 说明”，如“2027-02-07 班 春节调休”）"
        )
        imp.add_argument("--year", type=int, required=True)
        imp.add_argument("--file", required=True, help="通知文本文件（UTF-8），- 为标准输入")
        imp.add_argument("--title", default="")
        imp.add_argument("--dry-run", action="store_true", help="只校验并显示预览，不写入")
        imp.add_argument(
            "--actor",
            required=True,
            help="导入人账号（须有“维护业务日历”权限）；密码取自 CAIWEI_PASSWORD 或提示输入",
        )
        sub.add_parser("status", help="列出今年（11 月 1 日起含明年）缺少官方放假调休安排的年份")

    def handle(self, *args, action, **options):
        if action == "import-notice":
            return self.import_notice(**options)
        if action == "status":
            return self.status()
        calendar, start = options["calendar"], options["start"]
        try:
            if action == "due":
                result = services.due(calendar, start, options["minutes"])
            else:
                result = services.between(calendar, start, options["end"])
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc
        self.stdout.write(json.dumps(result, ensure_ascii=False))

    def import_notice(self, year, file, title, dry_run, actor, **_):
        from caiwei.accounts.cli import authenticate_actor
        from caiwei.accounts.roles import Capability

        from ...notice import import_notice, parse_notice

        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"无法读取通知文件“{file}”：{exc}") from exc
        with authenticate_actor(actor, Capability.MANAGE_CALENDAR):
            try:
                parsed = parse_notice(year, text)
                if not dry_run:
                    import_notice(year, text, title)
            except ValidationError as exc:
                raise CommandError("导入失败，未写入任何日期：\n" + "\n".join(exc.messages)) from exc
        for warning in parsed.warnings:
            self.stdout.write(f"注意：{warning}")
        verb = "校验通过（未写入）" if dry_run else "已导入"
        self.stdout.write(
            f"{verb} {parsed.year} 年放假安排：休息 {len(parsed.holidays)} 天，调休上班 {len(parsed.workdays)} 天"
        )

    def status(self):
        from ...notice import missing_message, missing_years

        years = missing_years()
        self.stdout.write(
            missing_message(years) if years else "今年（及 11 月 1 日起的明年）的放假调休安排均已具备"
        )
