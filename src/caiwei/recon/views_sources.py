"""银行文件来源 pages: the sources of the user's regions with their last pull and latest files, a form to set one up
(the password or private key write-only; the server's host key fingerprint read on request for the operator to
check and put in the field — never pinned by itself), and 立即拉取 (the ``recon.pull`` job of that source)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.checks.forms import Styled
from caiwei.jobs.models import JobStatus
from caiwei.regions.scoping import visible_regions

from . import services
from .intake import IntakeError
from .models import SOURCE_SETTINGS, BankFileSource


class WriteOnlyTextarea(forms.Textarea):
    """A text area that never shows a value back (a private key typed is not echoed in the page)."""

    def format_value(self, value):
        return None


class SourceForm(Styled, forms.ModelForm):
    password = forms.CharField(
        label="登录密码",
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="只写不读：加密保存，不再显示；留空则保留已保存的密码",
    )
    private_key = forms.CharField(
        label="登录私钥",
        required=False,
        max_length=20000,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="只写不读：加密保存，不再显示；留空则保留已保存的私钥",
    )
    clear_secret = forms.BooleanField(label="清除已保存的密码和私钥", required=False)

    class Meta:
        model = BankFileSource
        fields = ["region", "bank_format", *SOURCE_SETTINGS]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user).order_by("path")
        self.fields["region"].label_from_instance = lambda r: f"{r.name}（{r.code}）"
        self.fields["bank_format"].queryset = services.visible_formats(user)
        self.fields["reconcile_database"].queryset = services.run_databases(user)
        self.fields["bank_format"].label_from_instance = lambda f: f"{f.name}（{f.code}，第 {f.version} 版）"
        self.fields["private_key"].initial = self.fields["password"].initial = ""
        self.fields[
            "host_key"
        ].help_text = "形如 SHA256:…；可点“读取服务器指纹”，与银行核对无误后填入。不符即拒绝连接"
        self.style()

    def clean(self):
        data = super().clean()
        if data.get("clear_secret") and (data.get("password") or data.get("private_key")):
            self.add_error("clear_secret", "输入了新密码或私钥时不能同时清除")
        return data


def _secrets(form) -> dict:
    d = form.cleaned_data
    return {
        "password": d.get("password") or "",
        "private_key": (d.get("private_key") or "").strip(),
        "clear_secret": bool(d.get("clear_secret")),
    }


@require(Capability.RECON_FORMATS)
def source_list(request):
    user = request.user
    sources = list(services.visible_sources(user))
    return render(
        request,
        "recon/sources/index.html",
        {"sources": sources, "intakes": services.source_intakes(user, limit=30)},
    )


@require(Capability.RECON_FORMATS)
def source_new(request):
    return _source_form(request, None)


@require(Capability.RECON_FORMATS)
def source_edit(request, pk):
    source = get_object_or_404(services.visible_sources(request.user), pk=pk)
    return _source_form(request, source)


def _source_form(request, source):
    user = request.user
    form = SourceForm(request.POST or None, instance=source, user=user)
    scanned = None
    if request.method == "POST" and request.POST.get("action") == "scan":
        try:
            port = int(request.POST.get("port") or 22)
        except ValueError:
            port = 0
        try:
            scanned = services.scan_source_host_key(user, request.POST.get("host", ""), port)
        except IntakeError as exc:
            messages.error(request, f"读取服务器指纹失败：{exc}")
        # the form is shown again as typed (password fields empty), nothing saved
        form = SourceForm(request.POST, instance=source, user=user)
        form.is_valid()
    elif request.method == "POST" and form.is_valid():
        try:
            saved = services.save_source(user, form.instance, **_secrets(form))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"已保存银行文件来源“{saved.name}”")
            return redirect("recon:source", saved.pk)
    context = {
        "form": form,
        "source": source,
        "scanned": scanned,
        "intakes": services.source_intakes(user, source) if source else [],
        "has_password": bool(source and source.secret),
        "has_key": bool(source and source.key_secret),
    }
    return render(request, "recon/sources/form.html", context)


@require(Capability.RECON_FORMATS)
@require_POST
def source_pull(request, pk):
    source = get_object_or_404(services.visible_sources(request.user), pk=pk)
    job = services.pull_source_now(request.user, source)
    if job.status == JobStatus.SUCCEEDED:
        summary = (job.result or {}).get("message") or "拉取完成"
        messages.success(request, f"已拉取“{source.name}”：{summary}")
    elif job.status == JobStatus.FAILED:
        source.refresh_from_db()
        messages.error(request, f"拉取“{source.name}”失败：{source.last_message or '见任务日志'}")
    else:
        messages.info(request, f"已开始拉取“{source.name}”（后台任务 #{job.pk}）")
    return redirect("recon:source", source.pk)
