import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "同时启动网站（gunicorn）与后台任务进程（caiwei worker），任一退出则全部停止"

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4)

    def handle(self, *args, host, port, web_workers, threads, **options):
        python = sys.executable
        children = [
            subprocess.Popen([python, "-m", "caiwei.cli", "worker"]),
            subprocess.Popen(
                [
                    python,
                    "-m",
                    "gunicorn",
                    "caiwei.wsgi:application",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(web_workers),
                    "--threads",
                    str(threads),
                    "--access-logfile",
                    "-",
                    "--graceful-timeout",
                    "10",
                ]
            ),
        ]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"财维已启动：http://{host}:{port}/ （Ctrl+C 停止）")
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c.returncode for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            sys.exit(1)
