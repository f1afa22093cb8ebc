from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "caiwei.desk"
    verbose_name = "服务台"
