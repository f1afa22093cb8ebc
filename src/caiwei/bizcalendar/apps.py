from django.apps import AppConfig


class BizCalendarConfig(AppConfig):
    name = "caiwei.bizcalendar"
    verbose_name = "业务日历"
