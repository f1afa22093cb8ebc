from django.contrib import admin

from caiwei.accounts.roles import Capability
from caiwei.web.admin_site import CapabilityAdmin, code_column

from .models import Region


@admin.register(Region)
class RegionAdmin(CapabilityAdmin):
    capability = Capability.MANAGE_REGIONS
    view_capability = Capability.GRANT
    region_field = None  # the tree itself, kept by the system administrator
    list_display = [code_column(Region), "name", "level", "parent", "is_active"]
    list_filter = ["level", "is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["path"]
