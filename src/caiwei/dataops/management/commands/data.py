"""caiwei data query|change|backup|restore|drill …"""

from django.core.management.base import BaseCommand, CommandError

from ... import cli_backups, cli_changes, cli_console

PARTS = (cli_console, cli_changes, cli_backups)


class Command(BaseCommand):
    help = (
        "数据运维：query 在登记的财政库上执行只读查询（按列分级脱敏）；change 数据变更（审核、审批、执行、回滚）；"
        "backup 备份；restore 按范围恢复；drill 灾难恢复演练"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for part in PARTS:
            part.add_arguments(sub)

    def handle(self, *args, **options):
        for part in PARTS:
            if options["action"] in part.ACTIONS:
                return part.handle(self, options)
        raise CommandError(f"未知的子命令 {options['action']}")
