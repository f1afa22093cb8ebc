"""本地规则 over HTTP (/api/checks/local-rules): the same services as the pages."""

from __future__ import annotations

from typing import Literal

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router, Schema
from pydantic import Field

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record_export
from caiwei.inputs import Line, Text
from caiwei.regions.scoping import visible_regions

from . import custom_services as cs
from .custom_models import LocalRule, LocalRuleVersion

router = Router(tags=["数据检查 · 本地规则"])
ID = Path(..., gt=0, le=2**63 - 1)
RULE_TEXT = Text(200_000)


class RuleText(Schema):
    text: RULE_TEXT  # the rule file (YAML), as shipped rules are written
    region: Line(20) = ""  # region code; default the author's first granted region


# A file's text as sent: its size and characters are judged by custom.check_text, which names the line (Text would
# refuse a control character or a long text without naming the file); the request body limit of Django
# (DATA_UPLOAD_MAX_MEMORY_SIZE) bounds what arrives at all.
FILE_TEXT = str


class RuleFile(Schema):
    name: Line(200) = ""  # the file's name, for messages
    text: FILE_TEXT


class ImportIn(Schema):
    """One file (``text`` and optional ``name``) or several (``files``): all are judged, then all or none written."""

    text: FILE_TEXT = ""
    name: Line(200) = ""
    files: list[RuleFile] = Field(default_factory=list, max_length=500)
    region: Line(20) = ""


class VersionIn(Schema):
    text: RULE_TEXT
    note: Line(100) = ""


class CopyIn(Schema):
    shipped: Line(30)
    new_id: Line(30) = ""
    region: Line(20) = ""


class Rollback(Schema):
    number: int = Field(..., gt=0, le=10**8)


class Decision(Schema):
    number: int = Field(..., gt=0, le=10**8)
    decision: Literal["approve", "reject"]
    reason: Text(2000) = ""


class ValidateIn(Schema):
    text: RULE_TEXT


def _version(v: LocalRuleVersion) -> dict:
    return {
        "number": v.number,
        "status": v.status,
        "status_display": v.get_status_display(),
        "note": v.note,
        "author": v.author.username if v.author else "",
        "saved_at": v.created_at.isoformat(),
        "sha256": v.sha256,
        "decided_by": v.decided_by.username if v.decided_by else "",
        "decided_at": v.decided_at.isoformat() if v.decided_at else None,
        "reason": v.reason,
    }


def _rule(r: LocalRule, versions: bool = False) -> dict:
    latest = r.latest
    out = {
        "id": r.pk,
        "rule_id": r.rule_id,
        "region": r.region.code,
        "source_rule": r.source_rule,
        "shipped_changed": cs.shipped_changed(r),
        "approved_version": r.approved.number if r.approved else None,
        "latest": _version(latest) if latest else None,
    }
    if versions:
        out["versions"] = [_version(v) for v in r.versions.select_related("author", "decided_by")]
        out["text"] = latest.text if latest else ""
    return out


def _region(request, code: str):
    if not code:
        return None
    region = visible_regions(request.user).filter(code=code).first()
    if region is None:
        from django.core.exceptions import ValidationError

        raise ValidationError({"region": f"区划 {code} 不存在或不在您的授权范围内"})
    return region


def _get(request, rule_id: int) -> LocalRule:
    return get_object_or_404(cs.visible_local_rules(request.user), pk=rule_id)


@router.get("", summary="本地规则列表（按授权区划）")
def list_rules(request):
    ensure(request.user, Capability.CHECKS_VIEW, "checks.localrule")
    return [_rule(r) for r in cs.visible_local_rules(request.user)]


@router.post("", response={201: dict}, summary="编写本地规则（校验后保存为第 1 版草稿）")
def create(request, data: RuleText):
    version = cs.create_rule(request.user, data.text, _region(request, data.region))
    return 201, _rule(version.rule, versions=True)


@router.post("/copy", response={201: dict}, summary="复制出厂规则为本地规则（记录来源与出厂文件哈希）")
def copy(request, data: CopyIn):
    version = cs.copy_shipped(request.user, data.shipped, data.new_id, _region(request, data.region))
    return 201, _rule(version.rule, versions=True)


@router.post("/validate", summary="校验规则并在演练库试运行（条数与用时），不保存")
def validate(request, data: ValidateIn):
    return cs.check_and_try(request.user, data.text)


@router.post(
    "/import",
    response={201: dict},
    summary="导入规则文件（text 一个，或 files 多个）：同编号的规则增加草稿版本，否则新建；任一文件有误则全部不写入",
)
def import_rule(request, data: ImportIn):
    files = [(f.name or f"第 {i} 个文件", f.text) for i, f in enumerate(data.files, 1)]
    if data.text or not files:
        files.insert(0, (data.name or "规则文件", data.text))
    versions = cs.import_files(request.user, files, _region(request, data.region))
    if len(versions) == 1:
        return 201, _rule(versions[0].rule, versions=True)
    return 201, {"rules": [_rule(v.rule, versions=True) for v in versions]}


@router.get("/{rule_id}", summary="本地规则及其全部版本")
def detail(request, rule_id: int = ID):
    ensure(request.user, Capability.CHECKS_VIEW, "checks.localrule")
    return _rule(_get(request, rule_id), versions=True)


@router.post("/{rule_id}/versions", response={201: dict}, summary="保存新版本（草稿）")
def save_version(request, data: VersionIn, rule_id: int = ID):
    version = cs.save_version(request.user, _get(request, rule_id), data.text, data.note or "编辑")
    return 201, _version(version)


@router.post("/{rule_id}/rollback", response={201: dict}, summary="回滚：以旧版本的内容保存为新版本")
def rollback(request, data: Rollback, rule_id: int = ID):
    return 201, _version(cs.rollback(request.user, _get(request, rule_id), data.number))


@router.post("/{rule_id}/submit", summary="提交最新版本给项目经理审批")
def submit(request, rule_id: int = ID):
    rule = _get(request, rule_id)
    return _version(cs.submit(request.user, rule.latest))


@router.post("/{rule_id}/decision", summary="项目经理批准或驳回（驳回须填理由；不能审批自己编写的版本）")
def decide(request, data: Decision, rule_id: int = ID):
    rule = _get(request, rule_id)
    version = get_object_or_404(rule.versions, number=data.number)
    return _version(cs.decide(request.user, version, data.decision == "approve", data.reason))


@router.get("/{rule_id}/diff", summary="两个版本之间的差异（unified diff）")
def diff(request, rule_id: int = ID, a: int = Query(..., gt=0), b: int = Query(..., gt=0)):
    ensure(request.user, Capability.CHECKS_VIEW, "checks.localrule")
    rule = _get(request, rule_id)
    old = get_object_or_404(rule.versions, number=a)
    new = get_object_or_404(rule.versions, number=b)
    return {"a": a, "b": b, "diff": cs.diff(old, new)}


@router.get("/{rule_id}/export", summary="导出规则文件（YAML，附版本信息）")
def export(request, rule_id: int = ID, version: int | None = Query(None, gt=0)):
    ensure(request.user, Capability.CHECKS_VIEW, "checks.localrule")
    rule = _get(request, rule_id)
    chosen = get_object_or_404(rule.versions, number=version) if version else rule.latest
    record_export("checks.localrule", 1, {"rule": rule.rule_id, "version": chosen.number})
    response = HttpResponse(cs.export_text(chosen), content_type="application/x-yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{rule.rule_id}-v{chosen.number}.yaml"'
    return response
