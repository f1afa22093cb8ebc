from django.contrib import admin
from django.contrib.auth.views import redirect_to_login


class CaiweiAdminSite(admin.AdminSite):
    site_header = "财维 · 配置管理"
    site_title = "财维配置管理"
    index_title = "配置管理"

    def login(self, request, extra_context=None):
        # One login page for everybody, with the same lock-out; the admin's own form would demand is_staff.
        return redirect_to_login(request.GET.get("next", "/admin/"))

    def has_permission(self, request):
        # Entry for anyone one of whose capabilities some registered screen needs; each screen checks again.
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        return any(model_admin.has_module_permission(request) for model_admin in self._registry.values())


class CapabilityAdmin(admin.ModelAdmin):
    """Admin screens answer to capabilities (see accounts.roles), never to Django's per-model permissions."""

    capability: str = ""
    view_capability: str = ""

    def _can(self, request, capability: str) -> bool:
        return bool(capability) and request.user.is_authenticated and request.user.can(capability)

    def has_module_permission(self, request):
        return self._can(request, self.capability) or self._can(request, self.view_capability)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self._can(request, self.capability)

    def has_change_permission(self, request, obj=None):
        return self._can(request, self.capability)

    def has_delete_permission(self, request, obj=None):
        return self._can(request, self.capability)
