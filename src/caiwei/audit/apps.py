from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "caiwei.audit"
    verbose_name = "审计日志"

    def ready(self) -> None:
        from . import jobs, signals  # noqa: F401  (jobs registers its job kinds)

        signals.connect()
