"""``caiwei recon diff …`` as a Django management command (found once ``caiwei.recon`` is an installed app)."""

import sys

from django.core.management.base import BaseCommand

from ... import cli


class Command(BaseCommand):
    help = "对账：diff 比较两个库中的同一张表（校验和下推、只对不同的键区间二分）"

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        code = cli.run(options, self.stdout, self.stderr)
        # exit status as diff(1) from the shell: 0 identical, 1 differences, 2 error
        if code and getattr(self, "_called_from_command_line", False):
            sys.exit(code)
        return None
