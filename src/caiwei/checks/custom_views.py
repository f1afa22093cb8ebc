"""本地规则 pages: list, write or copy, validate and dry-run (htmx), versions with diff, submit, approve, files."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, TooManyFilesSent, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability, Role
from caiwei.audit.log import record_export
from caiwei.regions.scoping import visible_regions

from . import custom
from . import custom_services as cs
from .engine import shipped_packs
from .present import sample_columns


def _errors(exc: ValidationError) -> str:
    return "；".join(exc.messages)


def _region(request):
    code = request.POST.get("region", "").strip()
    if not code:
        return None
    return visible_regions(request.user).filter(code=code).first()


@require(Capability.CHECKS_VIEW)
def local_rules(request):
    rules = list(cs.visible_local_rules(request.user).prefetch_related("versions"))
    rows = [{"rule": r, "latest": r.latest, "changed": cs.shipped_changed(r)} for r in rules]
    return render(
        request,
        "checks/custom/list.html",
        {
            "rows": rows,
            "can_write": request.user.can(Capability.MANAGE_TARGETS),
            "packs": shipped_packs(),
        },
    )


@require(Capability.MANAGE_TARGETS)
def local_rule_new(request):
    copy = request.GET.get("copy", "") or request.POST.get("source_rule", "")
    text = request.POST.get("text", "")
    error = ""
    if copy and copy not in {r.id for p in shipped_packs().values() for r in p.rules}:
        copy, error = "", "没有该出厂规则"
    if request.method == "POST":
        try:
            version = cs.create_rule(
                request.user,
                text,
                _region(request),
                note=f"复制自出厂规则 {copy}" if copy else "新建",
                source_rule=copy,
            )
        except ValidationError as exc:
            error = _errors(exc)
        else:
            messages.success(
                request, f"已保存本地规则 {version.rule.rule_id} 第 1 版（草稿），提交审批后才会在生产库执行"
            )
            return redirect("checks:local_rule", version.rule_id)
    elif copy:
        text = custom.copy_of_shipped(copy, f"L-{copy}")
    return render(
        request,
        "checks/custom/form.html",
        {
            "text": text,
            "copy": copy,
            "error": error,
            "regions": cs.author_regions(request.user),
        },
    )


@require(Capability.CHECKS_VIEW)
def local_rule(request, pk):
    rule = get_object_or_404(cs.visible_local_rules(request.user), pk=pk)
    versions = list(rule.versions.select_related("author", "decided_by").order_by("-number"))
    latest = versions[0] if versions else None
    error, text = "", latest.text if latest else ""
    if request.method == "POST":
        if not request.user.can(Capability.MANAGE_TARGETS):
            raise PermissionDenied("无权限：需要“登记运维对象与数据库连接”权限")
        text = request.POST.get("text", "")
        try:
            version = cs.save_version(
                request.user, rule, text, note=request.POST.get("note", "").strip() or "编辑"
            )
        except ValidationError as exc:
            error = _errors(exc)
        else:
            messages.success(request, f"已保存第 {version.number} 版（草稿）")
            return redirect("checks:local_rule", rule.pk)
    by_number = {v.number: v for v in versions}
    b = by_number.get(_int(request.GET.get("b"))) or latest
    a = by_number.get(_int(request.GET.get("a"))) or (by_number.get(b.number - 1) if b else None)
    user = request.user
    return render(
        request,
        "checks/custom/detail.html",
        {
            "rule": rule,
            "versions": versions,
            "latest": latest,
            "text": text,
            "error": error,
            "a": a,
            "b": b,
            "diff": cs.diff(a, b) if b else [],
            "changed": cs.shipped_changed(rule),
            "can_write": user.can(Capability.MANAGE_TARGETS),
            "can_decide": user.has_role(Role.PROJECT_MANAGER),
            "user_pk": user.pk,
        },
    )


def _int(value) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 9 else None


@require(Capability.MANAGE_TARGETS)
@require_POST
def local_rule_validate(request):
    text = request.POST.get("text", "")
    result = cs.check_and_try(request.user, text)
    columns, rows = [], []
    dry = result.get("dry_run") or {}
    if dry.get("sample"):
        # As the result page shows a sample: labelled columns, key and evidence first, amounts to two decimals
        # (SQLite returns an amount as a float: 1234.5 is shown 1,234.50).
        columns = sample_columns(custom.check_text(text), dry["columns"])
        rows = [[(c, row.get(c["name"])) for c in columns] for row in dry["sample"]]
    return render(
        request, "checks/custom/_validate.html", {"result": result, "columns": columns, "sample_rows": rows}
    )


@require(Capability.MANAGE_TARGETS)
@require_POST
def local_rule_action(request, pk):
    rule = get_object_or_404(cs.visible_local_rules(request.user), pk=pk)
    action = request.POST.get("action")
    try:
        if action == "submit":
            version = cs.submit(request.user, rule.latest)
            messages.success(request, f"第 {version.number} 版已提交项目经理审批")
        elif action == "rollback" and _int(request.POST.get("number")):
            version = cs.rollback(request.user, rule, _int(request.POST.get("number")))
            messages.success(
                request, f"已回滚：第 {version.number} 版（草稿）与第 {request.POST['number']} 版相同"
            )
        else:
            messages.error(request, "未知的操作")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("checks:local_rule", rule.pk)


@require(Capability.MANAGE_TARGETS)
@require_POST
def local_rule_decide(request, pk):
    rule = get_object_or_404(cs.visible_local_rules(request.user), pk=pk)
    decision = request.POST.get("decision")
    version = rule.versions.filter(number=_int(request.POST.get("number"))).first()
    if decision not in ("approve", "reject") or version is None:
        messages.error(request, "请选择要审批的版本与“批准”或“驳回”")
        return redirect("checks:local_rule", rule.pk)
    try:
        cs.decide(request.user, version, decision == "approve", request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        word = "批准，生产库的检查将执行此版本" if decision == "approve" else "驳回"
        messages.success(request, f"第 {version.number} 版已{word}")
    return redirect("checks:local_rule", rule.pk)


@require(Capability.CHECKS_VIEW)
def local_rule_export(request, pk):
    rule = get_object_or_404(cs.visible_local_rules(request.user), pk=pk)
    version = rule.versions.filter(number=_int(request.GET.get("version"))).first() or rule.latest
    record_export("checks.localrule", 1, {"rule": rule.rule_id, "version": version.number})
    response = HttpResponse(cs.export_text(version), content_type="application/x-yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{rule.rule_id}-v{version.number}.yaml"'
    return response


@require(Capability.MANAGE_TARGETS)
@require_POST
def local_rule_import(request):
    try:
        uploads = request.FILES.getlist("file")
    except TooManyFilesSent:
        messages.error(request, f"一次最多导入 {settings.DATA_UPLOAD_MAX_NUMBER_FILES} 个文件，请分批导入")
        return redirect("checks:local_rules")
    if not uploads:
        messages.error(request, "请选择要导入的规则文件（.yaml，可多选）")
        return redirect("checks:local_rules")
    # Each file read up to the limit and one byte more: enough to tell it is too large (custom.decode says where).
    files = [(upload.name, upload.read(custom.MAX_BYTES + 1)) for upload in uploads]
    try:
        versions = cs.import_files(request.user, files, _region(request))
    except ValidationError as exc:
        messages.error(request, f"{_errors(exc)}（未写入任何内容）")
        return redirect("checks:local_rules")
    for version in versions:
        messages.success(request, f"已导入 {version.rule.rule_id} 第 {version.number} 版（草稿）")
    if len(versions) > 1:
        return redirect("checks:local_rules")
    return redirect("checks:local_rule", versions[0].rule_id)
