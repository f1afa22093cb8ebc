from django.apps import AppConfig


class DataopsConfig(AppConfig):
    name = "caiwei.dataops"
    verbose_name = "数据运维"

    def ready(self) -> None:
        # register the job kinds (change execution and recovery, backups, drills) and the worker's tick hooks
        from . import jobs  # noqa: F401
