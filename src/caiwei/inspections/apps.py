from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "caiwei.inspections"
    verbose_name = "巡检"

    def ready(self) -> None:
        # register the run job and hang the due-slot check on the worker's tick
        from . import jobs  # noqa: F401
