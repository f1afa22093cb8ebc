from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "caiwei.desk"
    verbose_name = "服务台"

    def ready(self) -> None:
        from . import jobs  # noqa: F401  (hangs the escalation sweep on the worker's tick)
