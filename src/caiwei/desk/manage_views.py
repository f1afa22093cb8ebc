"""项目经理的维护页面: SLA policies with their rules and regions, complaints (register, 认定), the report's header.

Until now these were editable only in the Django admin. The scope is the admin's (web.admin_site.CapabilityAdmin):
a policy is the manager's when every region it applies to lies in their grant; a policy tied to no region (the
contract presets, the default) applies wherever nothing more specific does, so only a manager whose grant covers
the whole tree may change it; others may read it. Complaints and report settings follow their region.
Every write goes through the models, so the audit chain records it (audit.signals) with the signed-in actor.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms import inlineformset_factory
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.bizcalendar.models import BusinessCalendar
from caiwei.inputs import text_problem
from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions
from caiwei.web.admin_site import covers_whole_tree

from . import flow, services
from .models import Complaint, ReportSettings, SlaPolicy, SlaRule

# --- scope --------------------------------------------------------------------------------------------------------


def visible_policies(user):
    """Policies whose regions all lie in the user's grant (a policy with no region is shared: readable by all)."""
    foreign = Region.objects.exclude(pk__in=visible_regions(user).values("pk"))
    outside = SlaPolicy.objects.filter(regions__in=foreign)
    return SlaPolicy.objects.exclude(pk__in=outside.values("pk"))


def may_change(user, policy: SlaPolicy) -> bool:
    if policy.pk is None or policy.regions.exists():
        return True
    return covers_whole_tree(user)


# --- forms --------------------------------------------------------------------------------------------------------


def _style(form: forms.BaseForm, small: bool = False) -> None:
    """Bootstrap classes on the widgets."""
    size = " form-control-sm" if small else ""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, (forms.RadioSelect, forms.CheckboxSelectMultiple)):
            continue
        elif isinstance(widget, forms.Select):
            css = "form-select form-select-sm"
        else:
            css = "form-control" + (size or " form-control-sm")
        widget.attrs["class"] = css


class PolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = ["code", "name", "source", "warn_ratio", "regions"]
        widgets = {"regions": forms.CheckboxSelectMultiple, "source": forms.TextInput}
        error_messages = {
            "code": {"unique": "代码“%(value)s”已被其他策略使用", "invalid": "代码只能含字母、数字、-、_"}
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["regions"].queryset = visible_regions(user).order_by("path")
        self.fields["regions"].label_from_instance = lambda r: r.name
        self.fields["code"].help_text = "字母、数字、-、_，如 xilingol-county"
        _style(self)

    def clean_warn_ratio(self):
        value = self.cleaned_data["warn_ratio"]
        if value is None or not 0 < value < 1:
            raise ValidationError("预警比例应大于 0、小于 1，如 0.8 表示用去 80% 时限时预警")
        return value

    def clean_regions(self):
        regions = list(self.cleaned_data["regions"])
        if not regions and not covers_whole_tree(self.user):
            raise ValidationError(
                "请至少选择一个适用区划（不指定区划的策略影响所有区划，须由全辖区的项目经理维护）"
            )
        taken = SlaPolicy.objects.filter(regions__in=regions).exclude(pk=self.instance.pk).distinct()
        clashes = [f"{r.name}（已适用“{p.name}”）" for p in taken for r in p.regions.all() if r in regions]
        if clashes:
            raise ValidationError(f"一个区划只能适用一个策略：{'、'.join(clashes)}")
        return regions


class RuleForm(forms.ModelForm):
    class Meta:
        model = SlaRule
        fields = [
            "severity",
            "ticket_type",
            "key_period",
            "clock",
            "minutes",
            "workdays",
            "same_day",
            "calendar",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["severity"].choices = [("", "任意")] + list(self.fields["severity"].choices)[1:]
        self.fields["ticket_type"].choices = [("", "任意")] + list(self.fields["ticket_type"].choices)[1:]
        _style(self)

    def clean_calendar(self):
        code = self.cleaned_data["calendar"]
        if not BusinessCalendar.objects.filter(code=code).exists():
            codes = "、".join(BusinessCalendar.objects.values_list("code", flat=True))
            raise ValidationError(f"业务日历“{code}”不存在，可选：{codes}")
        return code


class BaseRules(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        remaining = [
            f
            for f in self.forms
            if not self._should_delete_form(f) and (f.instance.pk is not None or f.has_changed())
        ]
        if not remaining:
            raise ValidationError("策略至少要有一条时限规则")


RuleFormSet = inlineformset_factory(
    SlaPolicy, SlaRule, form=RuleForm, formset=BaseRules, extra=2, can_delete=True
)


def save_policy(user, data, instance: SlaPolicy | None = None):
    """Validate and save a policy with its rules (page and API alike); (policy, None) or (None, (form, rules))."""
    instance = instance or SlaPolicy()
    if not may_change(user, instance):
        raise PermissionDenied("该策略未指定区划、适用于全辖，只有授权覆盖全辖的项目经理可以修改")
    form = PolicyForm(data, instance=instance, user=user)
    rules = RuleFormSet(data, instance=instance, prefix="rules")
    if not (form.is_valid() and rules.is_valid()):
        return None, (form, rules)
    with transaction.atomic():
        policy = form.save()
        rules.instance = policy
        rules.save()
    for ticket in policy.ticket_set.filter(status__in=flow.OPEN_STATUSES):
        services.refresh_due(ticket)  # open tickets follow their policy's new targets
    return policy, None


class ComplaintForm(forms.Form):
    region = forms.ModelChoiceField(Region.objects.none(), label="财政区划", empty_label="请选择")
    complainant = forms.CharField(label="投诉人", max_length=60)
    description = forms.CharField(
        label="投诉内容", widget=forms.Textarea(attrs={"rows": 3}), max_length=10000
    )
    ticket = forms.CharField(label="相关工单号", max_length=20, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["region"].queryset = visible_regions(user).order_by("path")
        self.fields["region"].label_from_instance = lambda r: r.name
        self.fields["region"].error_messages["invalid_choice"] = "请选择您授权范围内的区划"
        _style(self)

    def clean_ticket(self):
        number = self.cleaned_data["ticket"].strip()
        if not number:
            return None
        ticket = services.visible_tickets(self.user).filter(number=number).first()
        if ticket is None:
            raise ValidationError(f"工单号“{number}”不存在或不在您的授权区划内")
        return ticket

    def clean(self):
        data = super().clean()
        for name in ("complainant", "description"):
            if data.get(name) and (problem := text_problem(data[name], multiline=name == "description")):
                self.add_error(name, problem)
        return data


class DecisionForm(forms.Form):
    valid = forms.TypedChoiceField(
        label="认定结果",
        choices=[("true", "有效投诉（计入考核）"), ("false", "无效投诉")],
        coerce=lambda v: v == "true",
        widget=forms.RadioSelect,
        error_messages={"required": "请选择认定结果"},
    )
    note = forms.CharField(
        label="认定理由",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "请填写认定理由"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _style(self)

    def clean_note(self):
        note = self.cleaned_data["note"].strip()
        if problem := text_problem(note, multiline=True):
            raise ValidationError(problem)
        return note


class ReportSettingsForm(forms.ModelForm):
    class Meta:
        model = ReportSettings
        fields = ["region", "contract_name", "issuer", "recipient"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user).order_by("path")
        self.fields["region"].label_from_instance = lambda r: r.name
        self.fields["region"].error_messages["invalid_choice"] = "请选择您授权范围内的区划"
        _style(self)

    def validate_unique(self):
        pass  # one row per region: saving a region's settings again replaces them


# --- pages --------------------------------------------------------------------------------------------------------


@require(Capability.DESK_DECIDE)
def policies(request):
    rows = visible_policies(request.user).prefetch_related("regions", "rules")
    return render(
        request,
        "desk/manage/policies.html",
        {"policies": [(p, may_change(request.user, p)) for p in rows]},
    )


@require(Capability.DESK_DECIDE)
@require_http_methods(["GET", "POST"])
def policy_edit(request, pk: int | None = None):
    policy = get_object_or_404(visible_policies(request.user), pk=pk) if pk else SlaPolicy()
    writable = may_change(request.user, policy)
    if request.method == "POST":
        if not writable:
            raise PermissionDenied("该策略未指定区划、适用于全辖，只有授权覆盖全辖的项目经理可以修改")
        saved, errors = save_policy(request.user, request.POST, policy if pk else None)
        if saved is not None:
            messages.success(request, f"已保存服务时限策略“{saved.name}”")
            return redirect("desk:manage_policy_edit", pk=saved.pk)
        form, rules = errors
    else:
        form = PolicyForm(instance=policy, user=request.user)
        rules = RuleFormSet(instance=policy, prefix="rules")
    return render(
        request,
        "desk/manage/policy_form.html",
        {"policy": policy, "form": form, "rules": rules, "writable": writable},
    )


@require(Capability.DESK_DECIDE)
@require_http_methods(["GET", "POST"])
def complaints(request):
    qs = Complaint.objects.visible_to(request.user).select_related("region", "ticket", "decided_by")
    state = request.GET.get("state", "")
    if state == "pending":
        qs = qs.filter(valid__isnull=True)
    elif state in ("valid", "invalid"):
        qs = qs.filter(valid=state == "valid")
    form = ComplaintForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            complaint = services.register_complaint(
                request.user,
                region=data["region"],
                complainant=data["complainant"],
                description=data["description"],
                ticket=data["ticket"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "已登记投诉，请认定是否有效")
            return redirect("desk:manage_complaint", pk=complaint.pk)
    return render(
        request, "desk/manage/complaints.html", {"complaints": qs[:200], "form": form, "state": state}
    )


@require(Capability.DESK_DECIDE)
@require_http_methods(["GET", "POST"])
def complaint_decide(request, pk: int):
    complaint = get_object_or_404(Complaint.objects.visible_to(request.user), pk=pk)
    initial = {} if complaint.valid is None else {"valid": str(complaint.valid).lower()}
    form = DecisionForm(request.POST or None, initial={**initial, "note": complaint.decision_note})
    if request.method == "POST" and form.is_valid():
        services.decide_complaint(
            request.user, complaint, form.cleaned_data["valid"], form.cleaned_data["note"]
        )
        messages.success(request, f"已认定为{'有效' if complaint.valid else '无效'}投诉")
        return redirect("desk:manage_complaints")
    return render(request, "desk/manage/complaint.html", {"complaint": complaint, "form": form})


@require(Capability.DESK_DECIDE)
@require_http_methods(["GET", "POST"])
def report_settings(request):
    rows = ReportSettings.objects.visible_to(request.user).select_related("region")
    current = None
    code = request.POST.get("region_code") or request.GET.get("region")
    if code:
        region = visible_regions(request.user).filter(code=code).first()
        if region is None:
            raise Http404("区划不存在或不在您的授权范围内")
        current = ReportSettings.objects.filter(region=region).first() or ReportSettings(region=region)
    if request.method == "POST":
        region_pk = request.POST.get("region", "")
        existing = (
            ReportSettings.objects.visible_to(request.user).filter(region__pk=region_pk).first()
            if region_pk.isdigit()
            else None
        )
        form = ReportSettingsForm(request.POST, instance=existing, user=request.user)
        if form.is_valid():
            form.save()
            messages.success(request, f"已保存“{form.instance.region.name}”的月报设置")
            return redirect("desk:manage_report_settings")
    else:
        form = ReportSettingsForm(instance=current, user=request.user)
    return render(request, "desk/manage/report_settings.html", {"rows": rows, "form": form})
