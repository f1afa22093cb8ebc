from typing import Any

from django.core.exceptions import ValidationError
from ninja import Router, Schema

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.jobs import runner
from caiwei.jobs.api import JobOut, job_out

from . import service
from .forms import GenerateForm

router = Router(tags=["演练环境"])


class GenerateIn(Schema):
    regions: str = "152500000:3"
    year: int = 2026
    payments: int = 20000
    seed: int = 1
    faults: str = "all=1"


@router.get("", summary="演练库概况：各表行数、区划、代理银行与故障清单")
def summary(request) -> dict[str, Any]:
    ensure(request.user, Capability.VIEW_SANDBOX, "api:sandbox")
    return service.summary()


@router.post("/generate", response=JobOut, summary="后台重新生成演练库（项目经理、二线工程师）")
def generate(request, data: GenerateIn):
    ensure(request.user, Capability.MANAGE_SANDBOX, "api:sandbox.generate")
    form = GenerateForm(data.dict())
    if not form.is_valid():
        raise ValidationError(dict(form.errors.items()))
    return job_out(
        runner.start(
            "sandbox.generate",
            user=request.user,
            params=form.cleaned_data,
            title=f"生成演练库（{form.cleaned_data['payments']} 笔）",
        )
    )
