from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "启动后台任务进程（huey 消费者，含每分钟的定时节拍）"

    def add_arguments(self, parser):
        parser.add_argument("--workers", "-w", type=int, default=None, help="并发线程数")

    def handle(self, *args, workers=None, **options):
        extra = ["--workers", str(workers)] if workers else []
        call_command("run_huey", *extra)
