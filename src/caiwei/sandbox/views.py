from collections import Counter

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record_export
from caiwei.jobs import runner

from . import service
from .codes import FAULT_LABELS
from .forms import GenerateForm


@require(Capability.VIEW_SANDBOX)
def index(request):
    info = service.summary()
    manifest = info.get("manifest") or {}
    by_type = Counter(f["type"] for f in manifest.get("faults", []))
    faults = [{"type": t, "label": FAULT_LABELS.get(t, t), "count": n} for t, n in sorted(by_type.items())]
    bank_dir = service.bank_files_dir()
    files = (
        sorted(p.relative_to(bank_dir).as_posix() for p in bank_dir.rglob("*") if p.is_file())
        if bank_dir.exists()
        else []
    )
    return render(
        request,
        "sandbox/index.html",
        {
            "info": info,
            "faults": faults,
            "files": files[:200],
            "file_count": len(files),
            "form": GenerateForm(),
            "can_manage": request.user.can(Capability.MANAGE_SANDBOX),
        },
    )


@require(Capability.MANAGE_SANDBOX)
@require_POST
def generate(request):
    form = GenerateForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(
                    request, f"{form.fields[field].label if field in form.fields else ''}：{error}"
                )
        return redirect("sandbox:index")
    job = runner.start(
        "sandbox.generate",
        user=request.user,
        params=form.cleaned_data,
        title=f"生成演练库（{form.cleaned_data['payments']} 笔）",
    )
    return redirect("jobs:detail", pk=job.pk)


@require(Capability.VIEW_SANDBOX)
def manifest(request):
    path = service.manifest_path()
    if not path.exists():
        raise Http404("尚未生成故障清单")
    record_export("sandbox.manifest", 1)
    return FileResponse(path.open("rb"), as_attachment=True, filename="sandbox-manifest.json")


@require(Capability.VIEW_SANDBOX)
def bank_file(request, name: str):
    root = service.bank_files_dir().resolve()
    path = (root / name).resolve()
    if not path.is_file() or root not in path.parents:
        raise Http404("文件不存在")
    record_export("sandbox.bank_file", 1, {"file": name})
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
