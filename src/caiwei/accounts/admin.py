from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError

from caiwei.web.admin_site import CapabilityAdmin

from . import services
from .models import ApiToken, RegionGrant, User, UserRole
from .roles import Capability


@admin.register(User)
class UserAdmin(CapabilityAdmin, BaseUserAdmin):
    """账号管理（系统管理员）: no roles, regions or superuser flags here — those belong to others."""

    capability = Capability.MANAGE_ACCOUNTS
    view_capability = Capability.GRANT
    list_display = [
        "username",
        "full_name",
        "organization",
        "roles",
        "is_active",
        "locked_until",
        "last_login",
    ]
    list_filter = ["is_active"]
    search_fields = ["username", "full_name", "organization"]
    readonly_fields = ["last_login", "date_joined", "password_changed_at", "failed_logins", "roles"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("基本信息", {"fields": ["full_name", "organization", "email"]}),
        ("状态", {"fields": ["is_active", "locked_until", "failed_logins", "roles"]}),
        ("时间", {"fields": ["last_login", "date_joined", "password_changed_at"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "fields": [
                    "username",
                    "full_name",
                    "organization",
                    "usable_password",
                    "password1",
                    "password2",
                ]
            },
        )
    ]
    actions = ["unlock"]

    @admin.display(description="角色")
    def roles(self, obj):
        return "、".join(obj.role_labels()) or "-"

    @admin.action(description="解除登录锁定")
    def unlock(self, request, queryset):
        for user in queryset:
            services.unlock(request.user, user)
        self.message_user(request, f"已解锁 {queryset.count()} 个账号", messages.SUCCESS)

    def user_change_password(self, request, id, form_url=""):
        target = self.get_object(request, id)
        if target is not None:
            try:
                services._guard_admin_target(request.user, target)
            except ValidationError as exc:
                raise PermissionDenied(exc.messages[0]) from exc
        return super().user_change_password(request, id, form_url)


class GrantAdmin(CapabilityAdmin):
    capability = Capability.GRANT
    list_select_related = ["user", "granted_by"]
    readonly_fields = ["granted_by", "granted_at"]

    def save_model(self, request, obj, form, change):
        obj.granted_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(UserRole)
class UserRoleAdmin(GrantAdmin):
    list_display = ["user", "role", "granted_by", "granted_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__full_name"]
    fields = ["user", "role", "granted_by", "granted_at"]


@admin.register(RegionGrant)
class RegionGrantAdmin(GrantAdmin):
    list_display = ["user", "region", "granted_by", "granted_at"]
    search_fields = ["user__username", "region__name", "region__code"]
    fields = ["user", "region", "granted_by", "granted_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(CapabilityAdmin):
    """系统管理员可查看与吊销令牌，看不到令牌本身（只存哈希）."""

    capability = Capability.MANAGE_ACCOUNTS
    list_display = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked"]
    fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False
