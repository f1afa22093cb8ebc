from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WebConfig(AppConfig):
    default = True
    name = "caiwei.web"
    verbose_name = "页面外壳"


class CaiweiAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "caiwei.web.admin_site.CaiweiAdminSite"
