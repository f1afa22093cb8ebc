from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WebConfig(AppConfig):
    default = True
    name = "caiwei.web"
    verbose_name = "页面外壳"

    def ready(self):
        # Only screens that answer to the capability table and declare their region scope are offered. Screens
        # that third-party apps register on their own (Django's groups with per-model permissions, django-otp's
        # devices) would be ways around it, so they are taken off the site.
        from django.contrib import admin

        from .admin_site import CapabilityAdmin

        for model, model_admin in list(admin.site._registry.items()):
            if not isinstance(model_admin, CapabilityAdmin):
                admin.site.unregister(model)


class CaiweiAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "caiwei.web.admin_site.CaiweiAdminSite"
