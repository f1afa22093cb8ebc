"""Forms of the reconciliation pages: starting a run (with up to FILE_ROWS uploaded bank files, each with its
format and bank), and editing a bank file format."""

from decimal import Decimal

from django import forms

from caiwei.checks.forms import ChineseDateField, Styled
from caiwei.regions.models import Region

from .models import BankFormat

FILE_ROWS = 4


class RunForm(Styled, forms.Form):
    region = forms.ModelChoiceField(label="财政区划", queryset=Region.objects.none())
    database = forms.ModelChoiceField(label="财政数据库", queryset=None)
    period_start = ChineseDateField(label="对账期间起")
    period_end = ChineseDateField(label="对账期间止")
    as_of = ChineseDateField(label="对账日", required=False, help_text="留空为期间止")
    date_window = forms.IntegerField(label="到账窗口（T+n 个工作日）", initial=1, min_value=0, max_value=30)
    amount = forms.DecimalField(
        label="金额容差（元）", initial=Decimal("0.00"), min_value=0, max_digits=12, decimal_places=2
    )
    transit_days = forms.IntegerField(label="在途天数（工作日）", initial=10, min_value=0, max_value=60)
    use_sandbox = forms.BooleanField(label="使用演练库的银行文件与人民银行清算文件", required=False)

    def __init__(self, *args, regions, databases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = regions
        self.fields["database"].queryset = databases
        self.fields["region"].label_from_instance = lambda r: f"{r.name}（{r.code}）"
        self.style()

    def tolerance(self) -> dict:
        d = self.cleaned_data
        return {
            "date_window": d["date_window"],
            "amount": f"{d['amount']:.2f}",
            "transit_days": d["transit_days"],
        }


def uploads_from(request) -> tuple[list[tuple], list[str]]:
    """The (file, BankFormat, bank code) of each filled file row of the page's form, and the rows' problems."""
    found, errors = [], []
    formats = {str(f.pk): f for f in BankFormat.objects.all()}
    for i in range(FILE_ROWS):
        upload = request.FILES.get(f"file_{i}")
        if upload is None:
            continue
        fmt = formats.get(request.POST.get(f"format_{i}", ""))
        if fmt is None:
            errors.append(f"第 {i + 1} 行文件“{upload.name}”：请选择银行文件格式")
            continue
        found.append((upload, fmt, request.POST.get(f"bank_{i}", "").strip()[:12]))
    return found, errors


class FormatForm(Styled, forms.Form):
    code = forms.SlugField(label="编号", max_length=40, help_text="字母、数字、连字符，如 b103-csv")
    name = forms.CharField(label="名称", max_length=80, required=False, help_text="留空取定义中的 name")
    bank_code = forms.CharField(label="银行编码", max_length=12, required=False)
    definition = forms.CharField(
        label="格式定义（YAML）", widget=forms.Textarea(attrs={"rows": 22, "spellcheck": "false"})
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["code"]
        self.style()
        self.fields["definition"].widget.attrs["class"] += " font-monospace"
