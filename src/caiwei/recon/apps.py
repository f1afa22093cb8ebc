from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "caiwei.recon"
    verbose_name = "对账"

    def ready(self) -> None:
        # register the job kinds (a reconciliation run, a pull) and hang the due sources on the worker's tick
        from . import jobs, tasks  # noqa: F401
