import csv
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from caiwei.accounts.cli import authenticate_actor

from ...export import EXPORT_COLUMNS, export_rows
from ...jobs import describe
from ...log import record_export
from ...seals import export_seals, seal_quietly
from ...verify import check_chain


class Command(BaseCommand):
    help = "审计日志：verify 校验哈希链；export 导出、seals 导出封存点（需安全审计员身份）"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser(
            "verify", help="校验审计哈希链并对照封存点，完整时退出码为 0 并写封存点，否则指出第一处断裂的行"
        )
        verify.add_argument(
            "--seals",
            action="append",
            default=[],
            metavar="FILE",
            help="另外对照一份导出的封存点文件（可多次给出），用于发现本机封存文件被删改",
        )
        export = sub.add_parser("export", help="导出审计日志为 CSV（UTF-8 BOM）")
        export.add_argument(
            "--actor", required=True, help="执行导出的安全审计员账号；密码从 CAIWEI_PASSWORD 或提示输入"
        )
        export.add_argument("--output", "-o", default="-")
        export.add_argument("--since", help="起始日期 YYYY-MM-DD")
        export.add_argument("--until", help="截止日期 YYYY-MM-DD")
        seals = sub.add_parser("seals", help="导出封存点文件（JSON Lines），供安全审计员离机保存")
        seals.add_argument(
            "--actor", required=True, help="执行导出的安全审计员账号；密码从 CAIWEI_PASSWORD 或提示输入"
        )
        seals.add_argument("--output", "-o", default="-")

    def handle(self, *args, action, **options):
        if action == "verify":
            return self.verify(options["seals"])
        if action == "seals":
            return self.seals(options["actor"], options["output"])
        return self.export(**options)

    def verify(self, seal_files):
        for path in seal_files:
            if not Path(path).is_file():
                raise CommandError(f"封存点文件不存在：{path}")
        report = check_chain(seal_files=[Path(p) for p in seal_files])
        if report.broken is not None:
            self.stderr.write(f"审计链断裂：{describe(report.broken)}（共检查 {report.rows} 行）")
            sys.exit(1)
        self.stdout.write(f"审计链完整：共 {report.rows} 行。{report.seal_note()}。")
        sealed = seal_quietly(report.last)
        if sealed is not None:
            self.stdout.write(f"已写封存点：第 {sealed.seq} 行。")

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
            seal_quietly()
        if output != "-":
            self.stdout.write(f"已导出 {len(rows)} 行到 {output}")

    def seals(self, actor, output):
        with authenticate_actor(actor, "audit.read", "cli") as _user:
            data, count = export_seals()
            if output == "-":
                self.stdout.write(data.decode("utf-8"), ending="")
            else:
                Path(output).write_bytes(data)
            record_export("audit.seal", count)
        if output != "-":
            self.stdout.write(f"已导出 {count} 个封存点到 {output}")
