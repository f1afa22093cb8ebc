from django import forms
from django.core.exceptions import ValidationError

from caiwei.regions.models import Region

from .models import User
from .roles import TRI_ADMIN_ROLES, Role


class GrantForm(forms.Form):
    """授权: the roles and regions of one account, replaced as a whole."""

    roles = forms.MultipleChoiceField(
        label="角色", choices=Role.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    regions = forms.ModelMultipleChoiceField(
        label="财政区划",
        queryset=Region.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        to_field_name="code",
    )

    def clean_roles(self):
        roles = set(self.cleaned_data["roles"])
        if len(roles & TRI_ADMIN_ROLES) > 1:
            raise ValidationError(
                "三员分设：一个账号不能同时担任系统管理员、安全保密管理员、安全审计员中的两个"
            )
        return roles


class TokenForm(forms.Form):
    name = forms.CharField(label="用途", max_length=60)
    days = forms.IntegerField(label="有效天数", min_value=1, max_value=365, initial=90)


class UserCreateForm(forms.ModelForm):
    password = forms.CharField(label="初始密码", widget=forms.PasswordInput)

    class Meta:
        model = User
        fields = ["username", "full_name", "organization", "email"]


class CodeForm(forms.Form):
    code = forms.CharField(
        label="动态口令",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


STATUS_CHOICES = [
    ("deactivate", "停用账号"),
    ("activate", "启用账号"),
    ("lock", "锁定账号（至手动解锁）"),
    ("unlock", "解除锁定"),
    ("reset_otp", "重置动态口令"),
    ("reset_password", "重置密码"),
]


class StatusChangeForm(forms.Form):
    """系统管理员的账号状态操作; on one of the three administrators it becomes a request for approval."""

    username = forms.CharField(label="账号", max_length=150)
    action = forms.ChoiceField(label="操作", choices=STATUS_CHOICES)
    password = forms.CharField(
        label="新密码（仅重置密码时填写）", required=False, widget=forms.PasswordInput(render_value=False)
    )
    reason = forms.CharField(label="理由", max_length=200, required=False)

    def clean_username(self):
        user = User.objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise ValidationError("账号不存在")
        return user

    def clean(self):
        data = super().clean()
        if data.get("action") == "reset_password" and not data.get("password"):
            self.add_error("password", "重置密码须填写新密码")
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "批准"), ("reject", "驳回"), ("withdraw", "撤回")])
    note = forms.CharField(max_length=200, required=False)
