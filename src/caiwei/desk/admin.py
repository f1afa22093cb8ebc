from django.contrib import admin, messages

from caiwei.accounts.roles import Capability
from caiwei.web.admin_site import CapabilityAdmin, code_column

from . import services
from .models import Complaint, EscalationRule, SlaPolicy, SlaRule
from .presets import PRESETS


class SlaRuleInline(admin.TabularInline):
    model = SlaRule
    extra = 1

    def has_view_permission(self, request, obj=None):
        return request.user.can(Capability.DESK_DECIDE)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(SlaPolicy)
class SlaPolicyAdmin(CapabilityAdmin):
    """项目经理维护服务时限策略；“按合同预设重置”一键套用种子合同的时限。"""

    capability = Capability.DESK_DECIDE
    region_field = "regions"
    list_display = [code_column(SlaPolicy), "name", "warn_ratio", "source"]
    filter_horizontal = ["regions"]
    inlines = [SlaRuleInline]
    actions = ["reset_to_preset"]

    @admin.action(description="按合同预设重置所选策略（大兴区、佛山市、南通市、锡林郭勒盟）")
    def reset_to_preset(self, request, queryset):
        done = []
        for policy in queryset:
            if policy.code in PRESETS and self.has_change_permission(request, policy):
                done.append(services.apply_preset(policy.code).name)
        self.message_user(
            request, f"已按预设重置：{'、'.join(done) or '无（所选策略不是预设）'}", messages.SUCCESS
        )

    def changelist_view(self, request, extra_context=None):
        # Presets appear in the list from the first visit, so applying one is one click.
        for code in PRESETS:
            if not SlaPolicy.objects.filter(code=code).exists():
                services.apply_preset(code)
        return super().changelist_view(request, extra_context)


@admin.register(Complaint)
class ComplaintAdmin(CapabilityAdmin):
    capability = Capability.DESK_DECIDE
    region_field = "region"
    list_display = ["at", "region", "complainant", "ticket", "valid", "decided_by"]
    list_filter = ["valid", "region"]
    readonly_fields = ["decided_by"]

    def save_model(self, request, obj, form, change):
        if "valid" in form.changed_data:
            obj.decided_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(EscalationRule)
class EscalationRuleAdmin(CapabilityAdmin):
    capability = Capability.DESK_DECIDE
    region_field = None  # escalation rules apply to every region's tickets
    list_display = ["name", "clock", "at_percent", "action", "target_user", "severity", "active"]
