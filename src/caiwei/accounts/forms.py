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
