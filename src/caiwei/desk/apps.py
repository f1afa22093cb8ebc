from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "caiwei.desk"
    verbose_name = "服务台"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import jobs  # noqa: F401  (hangs the escalation sweep on the worker's tick)
        from .presets import rename_legacy

        post_migrate.connect(rename_legacy, sender=self, dispatch_uid="desk.presets.rename_legacy")
