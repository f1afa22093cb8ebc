from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "caiwei.sandbox"
    verbose_name = "演练环境"

    def ready(self) -> None:
        from . import jobs  # noqa: F401  (registers the job kinds)
