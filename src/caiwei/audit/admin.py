from django.contrib import admin

from caiwei.accounts.roles import Capability
from caiwei.web.admin_site import CapabilityAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(CapabilityAdmin):
    """Read-only for the auditor; nobody may add, change or delete a row."""

    view_capability = Capability.READ_AUDIT
    region_field = None  # the auditor reads the whole log
    list_display = ["seq", "at", "action", "actor", "ip", "object_type", "object_repr"]
    list_filter = ["action", "source"]
    search_fields = ["actor", "object_repr", "request_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}
