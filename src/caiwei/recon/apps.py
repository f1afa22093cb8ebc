from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "caiwei.recon"
    verbose_name = "对账"

    def ready(self):
        from . import jobs  # noqa: F401  (registers the pull job and hangs the due sources on the worker's tick)
