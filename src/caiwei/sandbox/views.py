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
from .forms import GenerateForm

FAULT_LABELS = {
    "indicator_overspent": "指标超支",
    "plan_over_indicator": "用款计划超指标",
    "element_mismatch": "支付与指标要素不一致",
    "tracking_id_lost": "追溯码丢失",
    "code_not_in_set": "代码不在标准值集",
    "non_leaf_code": "使用非末级代码",
    "duplicate_payment": "重复支付",
    "voucher_no_receipt": "凭证超期无回单",
    "paid_not_cleared": "已支付超期未清算",
    "bank_amount_mismatch": "银行实付金额与凭证不符",
    "voucher_missing_at_bank": "银行文件缺少凭证",
    "bank_line_no_voucher": "银行文件有、财政无凭证",
    "carryover_mismatch": "结转数与年末余额不符",
    "same_person_enter_approve": "同一人录入并审核",
    "admin_two_roles": "一人兼任两个三员角色",
    "dormant_account": "长期未登录账号仍启用",
    "departed_staff_active": "离职人员账号仍启用",
    "person_duplicate_id": "身份证号重复",
    "person_malformed_id": "身份证号校验位错误",
    "voucher_sign_failed": "凭证签章失败",
    "pay_item_implausible": "工资项目金额不合理",
    "asset_book_date_invalid": "资产记账日期不合理",
    "asset_no_duplicate": "资产编号重复",
    "asset_vehicle_no_plate": "车辆缺少号牌",
    "asset_disposal_conflict": "资产状态与处置矛盾",
    "asset_value_mismatch": "资产净值与原值折旧不符",
}


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
