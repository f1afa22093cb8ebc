from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from caiwei.web.admin_site import CapabilityAdmin

from . import services, twofactor
from .models import AccountChangeRequest, ApiToken, RegionGrant, User, UserRole
from .roles import TRI_ADMIN_ROLES, Capability

# django-otp's own device screen would show keys and bypass the rules below: devices are managed through
# 个人中心 and the "重置动态口令" action.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


def _messages(exc: Exception) -> str:
    return "；".join(getattr(exc, "messages", None) or [str(exc)])


@admin.register(User)
class UserAdmin(CapabilityAdmin, BaseUserAdmin):
    """账号管理（系统管理员）: no roles, regions or superuser flags here — those belong to others.

    Status changes are actions that go through ``services``: on one of the three administrators they become a
    request that another administrator approves.
    """

    capability = Capability.MANAGE_ACCOUNTS
    view_capability = Capability.GRANT
    region_field = None  # accounts are managed for the whole installation
    add_form_template = "admin/accounts/user/add_form.html"
    list_display = [
        "username",
        "full_name",
        "organization",
        "roles",
        "is_active",
        "locked_until",
        "otp",
        "last_login",
    ]
    list_filter = ["is_active"]
    search_fields = ["username", "full_name", "organization"]
    readonly_fields = [
        "last_login",
        "date_joined",
        "password_changed_at",
        "failed_logins",
        "roles",
        "is_active",
        "locked_until",
        "otp",
    ]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("基本信息", {"fields": ["full_name", "organization", "email"]}),
        (
            "状态（请用列表页的操作修改）",
            {"fields": ["is_active", "locked_until", "failed_logins", "otp", "roles"]},
        ),
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
    actions = ["deactivate", "activate", "lock", "unlock", "reset_otp"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.has_role(*TRI_ADMIN_ROLES):
            # Renaming one of the three would lock them out as surely as deactivating them.
            fields.append("username")
        return fields

    @admin.display(description="角色")
    def roles(self, obj):
        return "、".join(obj.role_labels()) or "-"

    @admin.display(description="动态口令", boolean=True)
    def otp(self, obj):
        return twofactor.has_device(obj)

    def _status(self, request, queryset, action: str, label: str) -> None:
        done, pending = [], []
        for user in queryset:
            try:
                req = services.change_status(request.user, user, action)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{user.username}：{_messages(exc)}", messages.ERROR)
                continue
            (pending if req is not None else done).append(
                f"{user.username}" + (f"（申请 #{req.pk}）" if req else "")
            )
        if done:
            self.message_user(request, f"已{label}：{'、'.join(done)}", messages.SUCCESS)
        if pending:
            self.message_user(
                request,
                f"三员账号须双人审批，已提交申请：{'、'.join(pending)}，请另一名三员在“账号变更审批”页批准",
                messages.WARNING,
            )

    @admin.action(description="停用账号")
    def deactivate(self, request, queryset):
        self._status(request, queryset, "deactivate", "停用")

    @admin.action(description="启用账号")
    def activate(self, request, queryset):
        self._status(request, queryset, "activate", "启用")

    @admin.action(description="锁定账号（至手动解锁）")
    def lock(self, request, queryset):
        self._status(request, queryset, "lock", "锁定")

    @admin.action(description="解除登录锁定")
    def unlock(self, request, queryset):
        self._status(request, queryset, "unlock", "解锁")

    @admin.action(description="重置动态口令")
    def reset_otp(self, request, queryset):
        self._status(request, queryset, "reset_otp", "重置动态口令")

    def user_change_password(self, request, id, form_url=""):
        target = self.get_object(request, unquote(id))
        if target is not None and self.has_change_permission(request, target):
            if target.pk == request.user.pk:
                raise PermissionDenied("请在个人中心修改本人密码（须输入原密码）")
            if request.method == "POST" and target.has_role(*TRI_ADMIN_ROLES):
                form = self.change_password_form(target, request.POST)
                if form.is_valid() and form.cleaned_data.get("password1"):
                    try:
                        req = services.reset_password(request.user, target, form.cleaned_data["password1"])
                    except ValidationError as exc:
                        self.message_user(request, _messages(exc), messages.ERROR)
                    else:
                        self.message_user(
                            request,
                            f"三员账号的密码重置须双人审批：已提交申请 #{req.pk}，批准后生效",
                            messages.WARNING,
                        )
                    return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[target.pk]))
        return super().user_change_password(request, id, form_url)

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        if obj is not None:
            return allowed and obj.pk != request.user.pk and not obj.has_role(*TRI_ADMIN_ROLES)
        return allowed

    def delete_model(self, request, obj):
        services.delete_user(request.user, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                services.delete_user(request.user, user)


class GrantAdminForm(forms.ModelForm):
    """Single grants added here follow the same rules as the 授权管理 page (through ``services``)."""

    actor: User | None = None

    def clean(self):
        data = super().clean()
        user, role = data.get("user"), data.get("role")
        if user is not None and self.actor is not None and user.pk == self.actor.pk:
            raise ValidationError("三员分设：不能给自己授予角色或区划")
        if role in TRI_ADMIN_ROLES:
            raise ValidationError(
                "三员分设：三员角色的授予与撤销须双人审批，请在“授权管理”页面提出申请，由另一名三员批准"
            )
        return data


class GrantAdmin(CapabilityAdmin):
    capability = Capability.GRANT
    region_field = None  # the security administrator grants across the whole tree
    list_select_related = ["user", "granted_by"]
    readonly_fields = ["granted_by", "granted_at"]
    form = GrantAdminForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.actor = request.user
        return form

    def has_change_permission(self, request, obj=None):
        return False  # a grant is added or removed, never edited in place

    def _allowed_on(self, request, obj) -> bool:
        return obj.user_id != request.user.pk and getattr(obj, "role", None) not in TRI_ADMIN_ROLES

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or self._allowed_on(request, obj))

    def delete_queryset(self, request, queryset):
        objs = list(queryset)
        for obj in objs:
            if not self._allowed_on(request, obj):
                raise PermissionDenied(f"三员分设：{obj} 不能在此删除")
        with transaction.atomic():
            for obj in objs:
                self.delete_model(request, obj)


@admin.register(UserRole)
class UserRoleAdmin(GrantAdmin):
    list_display = ["user", "role", "granted_by", "granted_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__full_name"]
    fields = ["user", "role", "granted_by", "granted_at"]

    def save_model(self, request, obj, form, change):
        current = set(obj.user.role_grants.values_list("role", flat=True))
        services.set_roles(request.user, obj.user, current | {obj.role})
        saved = UserRole.objects.get(user=obj.user, role=obj.role)
        obj.pk, obj.granted_by, obj.granted_at = saved.pk, saved.granted_by, saved.granted_at

    def delete_model(self, request, obj):
        current = set(obj.user.role_grants.values_list("role", flat=True))
        services.set_roles(request.user, obj.user, current - {obj.role})


@admin.register(RegionGrant)
class RegionGrantAdmin(GrantAdmin):
    list_display = ["user", "region", "granted_by", "granted_at"]
    search_fields = ["user__username", "region__name", "region__code"]
    fields = ["user", "region", "granted_by", "granted_at"]

    def save_model(self, request, obj, form, change):
        current = set(obj.user.region_grants.values_list("region__code", flat=True))
        services.set_regions(request.user, obj.user, current | {obj.region.code})
        saved = RegionGrant.objects.get(user=obj.user, region=obj.region)
        obj.pk, obj.granted_by, obj.granted_at = saved.pk, saved.granted_by, saved.granted_at

    def delete_model(self, request, obj):
        current = set(obj.user.region_grants.values_list("region__code", flat=True))
        services.set_regions(request.user, obj.user, current - {obj.region.code})


@admin.register(AccountChangeRequest)
class AccountChangeRequestAdmin(CapabilityAdmin):
    """Read only: requests are made and decided on the 账号变更审批 page, the API or the command."""

    view_capability = Capability.APPROVE_CHANGES
    region_field = None
    list_display = ["pk", "subject", "kind", "proposer", "proposed_at", "status", "decided_by", "decided_at"]
    list_filter = ["status", "kind"]
    fields = list_display[1:] + ["payload", "reason", "note"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(CapabilityAdmin):
    """系统管理员可查看与吊销令牌，看不到令牌本身（只存哈希）."""

    capability = Capability.MANAGE_ACCOUNTS
    region_field = None
    list_display = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked"]
    fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        # A revoked token stays revoked: tokens die with a password, role or status change, and un-ticking
        # "revoked" here would bring one back.
        if obj is not None and obj.revoked:
            return self.fields
        return self.readonly_fields

    def has_add_permission(self, request):
        return False
