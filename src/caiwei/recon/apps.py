from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "caiwei.recon"
    verbose_name = "对账"
