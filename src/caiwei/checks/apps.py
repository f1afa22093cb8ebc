from django.apps import AppConfig


class ChecksConfig(AppConfig):
    name = "caiwei.checks"
    verbose_name = "数据检查"

    def ready(self) -> None:
        from . import jobs  # noqa: F401  (registers the job kind and the schedule tick)
