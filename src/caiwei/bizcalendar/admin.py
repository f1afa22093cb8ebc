from django.contrib import admin

from caiwei.accounts.roles import Capability
from caiwei.web.admin_site import CapabilityAdmin, code_column

from .models import BusinessCalendar, CalendarDay, KeyPeriod


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    extra = 1

    def _can(self, request):
        return request.user.can(Capability.MANAGE_CALENDAR)

    def has_view_permission(self, request, obj=None):
        return self._can(request)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_CALENDAR
    region_field = None  # calendars are shared configuration
    list_display = [code_column(BusinessCalendar), "name", "always_open", "periods", "use_statutory"]
    inlines = [CalendarDayInline]


@admin.register(KeyPeriod)
class KeyPeriodAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_CALENDAR
    region_field = None
    list_display = [code_column(KeyPeriod), "name", "start", "end", "note"]
    date_hierarchy = "start"
