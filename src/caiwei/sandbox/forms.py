from django import forms
from django.core.exceptions import ValidationError

from .generator import SpecError, parse_faults, parse_regions


class GenerateForm(forms.Form):
    regions = forms.CharField(label="区划", initial="152500000:3", help_text="市/盟区划代码:县数")
    year = forms.IntegerField(label="预算年度", initial=2026, min_value=2000, max_value=2100)
    payments = forms.IntegerField(label="支付笔数", initial=20000, min_value=100, max_value=2_000_000)
    seed = forms.IntegerField(label="随机种子", initial=1, min_value=0, max_value=2**31 - 1)
    faults = forms.CharField(
        label="故障", initial="all=1", required=False, help_text="类型=次数,… 或 all=1；留空为干净数据"
    )

    def clean_regions(self):
        try:
            parse_regions(self.cleaned_data["regions"])
        except SpecError as exc:
            raise ValidationError(str(exc)) from exc
        return self.cleaned_data["regions"]

    def clean_faults(self):
        try:
            parse_faults(self.cleaned_data["faults"])
        except SpecError as exc:
            raise ValidationError(str(exc)) from exc
        return self.cleaned_data["faults"]
