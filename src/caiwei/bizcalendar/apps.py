from django.apps import AppConfig


class BizCalendarConfig(AppConfig):
    name = "caiwei.bizcalendar"
    verbose_name = "业务日历"

    def ready(self):
        from . import jobs  # noqa: F401  (hangs the missing-schedule warning on the worker's tick)
