from django import forms

from caiwei.bizcalendar.models import BusinessCalendar
from caiwei.checks.forms import Styled
from caiwei.regions.scoping import visible_regions

from .models import Plan, PlanItem


class PlanForm(Styled, forms.ModelForm):
    calendar = forms.ChoiceField(label="业务日历")

    class Meta:
        model = Plan
        fields = [
            "region",
            "system",
            "name",
            "valid_from",
            "valid_until",
            "calendar",
            "grace_minutes",
            "enabled",
            "note",
        ]
        widgets = {
            "valid_from": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
            "valid_until": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user).order_by("path")
        self.fields["region"].label_from_instance = lambda r: f"{r.name}（{r.code}）"
        self.fields["calendar"].choices = list(BusinessCalendar.objects.values_list("code", "name"))
        self.fields["grace_minutes"].help_text = "应巡检时间之后多少分钟内完成算按时"
        self.style()


class ItemForm(Styled, forms.ModelForm):
    class Meta:
        model = PlanItem
        fields = [
            "name",
            "kind",
            "frequency",
            "times",
            "weekday",
            "nth",
            "key_frequency",
            "key_times",
            "key_codes",
            "monitor_items",
            "database",
            "packs",
            "instructions",
            "position",
        ]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user=None, plan=None, **kwargs):
        from caiwei.checks.services import visible_databases
        from caiwei.monitor.services import visible_items

        super().__init__(*args, **kwargs)
        items = visible_items(user)
        databases = visible_databases(user)
        if plan is not None:
            items = items.filter(region=plan.region)
        self.fields["monitor_items"].queryset = items.order_by("name")
        self.fields["monitor_items"].widget.attrs["class"] = "form-select form-select-sm"
        self.fields["monitor_items"].help_text = "监控探测类：选一个或多个监控项（可多选）"
        self.fields["database"].queryset = databases
        self.fields["database"].help_text = "数据检查、银行对账类：选目标数据库"
        self.fields["times"].help_text = "时:分，多个用逗号分隔，如 09:00,15:00（每天两次）"
        self.fields["nth"].help_text = "每月频次用：第几个工作日"
        self.fields["weekday"].help_text = "每周频次用：遇节假日顺延到其后第一个工作日"
        self.fields["key_frequency"].help_text = "关键时期（如 12月大支付、年结）内改用的频次"
        self.style()
