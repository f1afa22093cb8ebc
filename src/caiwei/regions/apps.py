from django.apps import AppConfig


class RegionsConfig(AppConfig):
    name = "caiwei.regions"
    verbose_name = "财政区划"
