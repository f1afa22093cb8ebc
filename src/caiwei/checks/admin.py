from django.contrib import admin

from caiwei.accounts.roles import Capability
from caiwei.web.admin_site import CapabilityAdmin

from .forms import DatabaseForm
from .models import CheckSchedule, Target, TargetDatabase
from .services import visible_databases


class DatabaseInline(admin.StackedInline):
    model = TargetDatabase
    form = DatabaseForm  # the page's form: the password is sealed on save and never shown
    extra = 0

    def has_view_permission(self, request, obj=None):
        return request.user.can(Capability.MANAGE_TARGETS)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(Target)
class TargetAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_TARGETS
    region_field = "region"
    list_display = ("name", "system", "region", "vendor", "is_sandbox")
    inlines = [DatabaseInline]


@admin.register(CheckSchedule)
class ScheduleAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_TARGETS
    region_field = "database__target__region"
    scoped_choices = {"database": lambda user: visible_databases(user)}
    list_display = ("database", "packs", "cron", "enabled", "next_run_at")
    readonly_fields = ("next_run_at", "last_run")
