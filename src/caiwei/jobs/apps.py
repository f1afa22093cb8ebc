from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "caiwei.jobs"
    verbose_name = "后台任务"
