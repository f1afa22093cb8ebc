from django import forms

from caiwei.bizcalendar.models import BusinessCalendar
from caiwei.checks.forms import Styled
from caiwei.regions.scoping import visible_regions

from . import probes
from .models import AlertRule, Item, MaintenanceWindow, Webhook


def _regions(field, user, empty: str | None = None):
    field.queryset = visible_regions(user).order_by("path")
    field.label_from_instance = lambda r: f"{r.name}（{r.code}）"
    if empty is not None:
        field.empty_label = empty


class ItemForm(Styled, forms.ModelForm):
    secret = forms.CharField(
        label="密码或令牌",
        required=False,
        strip=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="只写不读：加密保存，不再显示；留空则保留已保存的",
    )
    clear_secret = forms.BooleanField(label="清除已保存的密码或令牌", required=False)
    config = forms.JSONField(
        label="探测设置",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 5, "spellcheck": "false", "class": "form-control form-control-sm font-monospace"}
        ),
        help_text="JSON 对象，各类型的设置见右侧说明",
    )
    calendar = forms.ChoiceField(label="业务日历", required=False)

    class Meta:
        model = Item
        fields = [
            "region",
            "system",
            "name",
            "kind",
            "target_database",
            "config",
            "interval_s",
            "timeout_s",
            "calendar",
            "enabled",
        ]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        from caiwei.checks.services import visible_databases

        _regions(self.fields["region"], user)
        self.fields["target_database"].queryset = visible_databases(user)
        self.fields["calendar"].choices = [(c.code, c.name) for c in BusinessCalendar.objects.all()]
        self.fields["calendar"].help_text = "接口时效按此日历判断此时是否应有业务"
        self.style()

    def clean_calendar(self):
        return self.cleaned_data.get("calendar") or "workday"

    def clean_config(self):
        value = self.cleaned_data.get("config")
        return {} if value in (None, "") else value

    def clean(self):
        data = super().clean()
        if data.get("clear_secret") and data.get("secret"):
            self.add_error("clear_secret", "输入了新密码时不能同时清除")
        return data


class RuleForm(Styled, forms.ModelForm):
    metric = forms.ChoiceField(label="指标", choices=list(probes.METRIC_LABELS.items()))

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "region",
            "kind",
            "metric",
            "op",
            "threshold",
            "severity",
            "open_after",
            "resolve_after",
            "open_ticket",
            "enabled",
        ]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        _regions(self.fields["region"], user, "全辖")
        self.fields["kind"].choices = [("", "所有类型")] + list(probes.KINDS.items())
        self.style()


class WindowForm(Styled, forms.ModelForm):
    starts_at = forms.DateTimeField(
        label="开始",
        widget=forms.DateTimeInput(attrs={"placeholder": "2026-12-31 20:00"}),
        help_text="如 2026-12-31 20:00",
    )
    ends_at = forms.DateTimeField(
        label="结束",
        widget=forms.DateTimeInput(attrs={"placeholder": "2026-12-31 23:00"}),
        help_text="如 2026-12-31 23:00",
    )

    class Meta:
        model = MaintenanceWindow
        fields = ["region", "reason", "system", "items", "starts_at", "ends_at"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        from .services import visible_items

        _regions(self.fields["region"], user)
        self.fields["items"].queryset = visible_items(user)
        self.fields["items"].help_text = "不选则为该区划（及所选系统）的全部监控项"
        self.fields["items"].widget.attrs["class"] = "form-select form-select-sm"
        self.fields["system"].help_text = "不选为全部系统"
        self.style()


class WebhookForm(Styled, forms.ModelForm):
    url = forms.CharField(
        label="机器人地址",
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="企业微信或钉钉群机器人的完整地址（含密钥）；只写不读，加密保存；留空则保留已保存的",
    )

    class Meta:
        model = Webhook
        fields = ["region", "name", "kind", "min_severity", "enabled"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        _regions(self.fields["region"], user)
        self.style()
