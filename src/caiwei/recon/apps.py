from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "caiwei.recon"
    verbose_name = "对账"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  (registers the job kind of a reconciliation run)
