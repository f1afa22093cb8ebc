from django import forms
from django.contrib import admin

from caiwei.accounts.roles import Capability
from caiwei.web.admin_site import CapabilityAdmin

from .models import CheckSchedule, Target, TargetDatabase


class DatabaseForm(forms.ModelForm):
    password = forms.CharField(
        label="密码",
        required=False,
        widget=forms.PasswordInput,
        help_text="加密保存，不再显示；留空则保持原密码",
    )

    class Meta:
        model = TargetDatabase
        fields = [
            "name",
            "dialect",
            "host",
            "port",
            "database",
            "username",
            "read_only",
            "timeout_s",
            "as_of",
            "mapping",
        ]

    def save(self, commit=True):
        if self.cleaned_data.get("password"):
            self.instance.set_password(self.cleaned_data["password"])
        return super().save(commit)


class DatabaseInline(admin.StackedInline):
    model = TargetDatabase
    form = DatabaseForm
    extra = 0
    exclude = ("last_test_at", "last_test_ok", "last_test_message")

    def has_view_permission(self, request, obj=None):
        return request.user.can(Capability.MANAGE_TARGETS)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(Target)
class TargetAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_TARGETS
    list_display = ("name", "system", "region", "vendor", "is_sandbox")
    inlines = [DatabaseInline]


@admin.register(CheckSchedule)
class ScheduleAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_TARGETS
    list_display = ("database", "packs", "cron", "enabled", "next_run_at")
    readonly_fields = ("next_run_at", "last_run")
