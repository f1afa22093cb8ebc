import json

from django import forms
from django.core.exceptions import ValidationError

from caiwei.regions.scoping import visible_regions

from . import limits
from .engine import RuleError, shipped_packs
from .models import CheckSchedule, Target, TargetDatabase
from .sqlplan import Mapping


class Styled:
    """Bootstrap classes on every widget, so the template can render fields as they are."""

    def style(self):
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.SelectMultiple):
                continue
            css = (
                "form-select form-select-sm"
                if isinstance(widget, forms.Select)
                else "form-control form-control-sm"
            )
            widget.attrs.setdefault("class", css)


class ChineseDateField(forms.DateField):
    """A date typed as 2026-12-31, 2026/12/31, 2026.12.31, 20261231 or 2026年12月31日 (limits.parse_date); errors
    name the field. A text input: the browser's date picker would refuse the other spellings before they arrive."""

    widget = forms.TextInput

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("help_text", "如 2026-12-31、2026/12/31、20261231 或 2026年12月31日")
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("placeholder", "2026-12-31")
        self.widget.attrs.setdefault("inputmode", "numeric")

    def to_python(self, value):
        return limits.parse_date(value, str(self.label or "日期"))

    def prepare_value(self, value):
        return value.isoformat() if hasattr(value, "isoformat") else value


def pack_choices():
    from .custom import LOCAL_PACK, LOCAL_PACK_TITLE

    shipped = [(name, f"{pack.title}（{len(pack.rules)} 条）") for name, pack in shipped_packs().items()]
    return [*shipped, (LOCAL_PACK, f"{LOCAL_PACK_TITLE}（本区划已批准的）")]


class RunForm(forms.Form):
    database = forms.ModelChoiceField(label="数据库", queryset=TargetDatabase.objects.none())
    packs = forms.MultipleChoiceField(
        label="规则包", choices=pack_choices, required=False, help_text="不选为全部"
    )
    regions = forms.CharField(label="区划代码", required=False, help_text="空格或逗号分隔；留空为全部")
    year = forms.IntegerField(label="年度", required=False, min_value=2000, max_value=2100)
    date_from = ChineseDateField(label="日期起", required=False)
    date_to = ChineseDateField(label="日期止", required=False)
    sample = forms.BooleanField(label="抽取问题数据与样本（用于比对与导出）", required=False, initial=True)
    params = forms.CharField(
        label="规则参数", required=False, help_text="如 BIZ-001.cutoff=5（天），逗号分隔；留空用规则默认值"
    )

    def __init__(self, *args, databases=None, **kwargs):
        super().__init__(*args, **kwargs)
        if databases is not None:
            self.fields["database"].queryset = databases

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("日期起不能晚于日期止")
        return data

    def scope(self) -> dict:
        d = self.cleaned_data
        codes = [c for c in (d.get("regions") or "").replace("，", ",").replace(",", " ").split() if c]
        return {
            "regions": codes,
            "year": d.get("year"),
            "date_from": d["date_from"].isoformat() if d.get("date_from") else None,
            "date_to": d["date_to"].isoformat() if d.get("date_to") else None,
        }

    def pack_names(self) -> str:
        return ",".join(self.cleaned_data.get("packs") or []) or "all"


class TargetForm(Styled, forms.ModelForm):
    class Meta:
        model = Target
        fields = ["name", "system", "region", "vendor", "description"]
        widgets = {"description": forms.TextInput()}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            self.fields["region"].queryset = visible_regions(user)
        self.style()


class DatabaseForm(Styled, forms.ModelForm):
    password = forms.CharField(
        label="密码",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="以国密 SM4 加密保存，保存后不再显示；修改时留空则保持原密码。"
        "改了数据库类型、主机、端口、库名或用户名时须重新输入",
    )
    clear_password = forms.BooleanField(
        label="清除已保存的密码", required=False, help_text="新的连接不需要密码时勾选"
    )
    mapping_text = forms.CharField(
        label="表名与列名映射（JSON）",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='目标库表名、列名与标准不同时填写，如 {"tables": {"pay_voucher": "zf_zfsq"}, '
        '"columns": {"pay_voucher": {"pay_amt": "zfje"}}}',
    )

    class Meta:
        model = TargetDatabase
        fields = [
            "name",
            "dialect",
            "host",
            "port",
            "database",
            "username",
            "read_only",
            "timeout_s",
            "as_of",
        ]
        field_classes = {"as_of": ChineseDateField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.mapping:
            self.fields["mapping_text"].initial = json.dumps(self.instance.mapping, ensure_ascii=False)
        self.style()

    def clean_mapping_text(self):
        text = self.cleaned_data.get("mapping_text", "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"不是合法的 JSON：{exc}") from exc
        try:
            Mapping.from_dict(value)
        except RuleError as exc:
            raise ValidationError(str(exc)) from exc
        return value

    def clean(self):
        """A stored password stays only with the connection it was stored with: a changed type, host, port, database
        or user needs the password again (or 清除已保存的密码). ``self.instance`` still holds the stored values here."""
        data = super().clean()
        stored = self.instance
        if data.get("password") and data.get("clear_password"):
            self.add_error("clear_password", "输入了新密码时不能同时清除密码")
        if not (stored.pk and stored.has_password) or data.get("password") or data.get("clear_password"):
            return data
        if data.get("dialect") == TargetDatabase.Dialect.SQLITE:
            return data
        changed = TargetDatabase(
            **{f: data.get(f, getattr(stored, f)) for f in TargetDatabase.CONNECTION_FIELDS}
        )
        fields = changed.changed_connection_fields(stored)
        if fields:
            labels = "、".join(str(self.fields[f].label) for f in fields if f in self.fields)
            self.add_error("password", f"修改了{labels}，请重新输入密码：已保存的密码只用于原来的连接")
        return data

    def _post_clean(self):
        self.instance.mapping = self.cleaned_data.get("mapping_text") or {}
        super()._post_clean()

    def save(self, commit=True):
        # The instance now holds the new connection fields: the password is sealed for exactly these, at once; the
        # plain text goes no further.
        if self.cleaned_data.get("password"):
            self.instance.set_password(self.cleaned_data["password"])
        elif (
            self.cleaned_data.get("clear_password") or self.instance.dialect == TargetDatabase.Dialect.SQLITE
        ):
            self.instance.secret = ""
        return super().save(commit)


class ScheduleForm(Styled, forms.ModelForm):
    packs = forms.MultipleChoiceField(
        label="规则包", choices=pack_choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style()

    class Meta:
        model = CheckSchedule
        fields = ["cron", "sample", "enabled"]

    def pack_names(self) -> str:
        return ",".join(self.cleaned_data.get("packs") or []) or "all"
