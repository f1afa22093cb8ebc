from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "caiwei.monitor"
    verbose_name = "监控"

    def ready(self) -> None:
        # register the job kind (a roll-up) and hang the due probes on the worker's tick
        from . import jobs  # noqa: F401
