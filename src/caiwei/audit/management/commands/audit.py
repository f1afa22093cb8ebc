import csv
import sys

from django.core.management.base import BaseCommand

from caiwei.accounts.cli import authenticate_actor

from ...export import EXPORT_COLUMNS, export_rows
from ...log import record_export
from ...verify import verify_chain


class Command(BaseCommand):
    help = "审计日志：verify 校验哈希链；export 导出（需安全审计员身份）"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="校验审计哈希链，完整时退出码为 0，否则指出第一处断裂的行")
        export = sub.add_parser("export", help="导出审计日志为 CSV（UTF-8 BOM）")
        export.add_argument(
            "--actor", required=True, help="执行导出的安全审计员账号；密码从 CAIWEI_PASSWORD 或提示输入"
        )
        export.add_argument("--output", "-o", default="-")
        export.add_argument("--since", help="起始日期 YYYY-MM-DD")
        export.add_argument("--until", help="截止日期 YYYY-MM-DD")

    def handle(self, *args, action, **options):
        if action == "verify":
            return self.verify()
        return self.export(**options)

    def verify(self):
        count, broken = verify_chain()
        if broken is not None:
            self.stderr.write(f"审计链断裂：第 {broken.seq} 行。{broken.reason}（共检查 {count} 行）")
            sys.exit(1)
        self.stdout.write(f"审计链完整：共 {count} 行。")

    def export(self, actor, output, since=None, until=None, **_):
        with authenticate_actor(actor, "audit.read", "cli") as _user:
            filters = {"since": since, "until": until}
            rows = list(export_rows(filters))
            stream = sys.stdout if output == "-" else open(output, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            try:
                writer = csv.writer(stream)
                writer.writerow([label for _, label in EXPORT_COLUMNS])
                writer.writerows(rows)
            finally:
                if stream is not sys.stdout:
                    stream.close()
            record_export("audit.auditevent", len(rows), filters)
        if output != "-":
            self.stdout.write(f"已导出 {len(rows)} 行到 {output}")
