"""``caiwei checks rules list|export|import`` for 本地规则 (called from the checks command)."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from caiwei.audit.log import record_export

from . import custom_services as cs
from .custom_models import LocalRule


def list_local(cmd, sql: bool = False) -> None:
    for rule in LocalRule.objects.select_related("region", "approved").order_by("rule_id"):
        latest = rule.latest
        if latest is None:
            continue
        approved = f"在用第 {rule.approved.number} 版" if rule.approved else "未批准"
        changed = "（出厂规则已更新）" if cs.shipped_changed(rule) else ""
        title = cs.custom.load_data(latest.text).get("title", "")
        cmd.stdout.write(
            f"{rule.rule_id}\t本地规则·{rule.region.name}\t第 {latest.number} 版 {latest.get_status_display()}，"
            f"{approved}{changed}\t{title}"
        )
        if sql:
            cmd.stdout.write(latest.text)


def run_rules_command(cmd, op: str, **options) -> None:
    if op == "export":
        return export(cmd, options["id"], options["version"], options["approved"], options["out"])
    return import_files(cmd, options["files"], options["actor"], options["region"])


def export(cmd, ids: list[str], number: int | None, approved: bool, out: Path | None) -> None:
    rules = LocalRule.objects.select_related("region", "approved").order_by("rule_id")
    if ids:
        rules = rules.filter(rule_id__in=ids)
        missing = sorted(set(ids) - set(rules.values_list("rule_id", flat=True)))
        if missing:
            raise CommandError(f"没有本地规则 {'、'.join(missing)}")
    rules = list(rules)
    if not rules:
        raise CommandError("没有可导出的本地规则")
    if len(rules) > 1 and (out is None or not out.is_dir()):
        raise CommandError("导出多条规则时 --out 须为已存在的目录")
    for rule in rules:
        if number:
            version = rule.versions.filter(number=number).first()
        elif approved:
            version = rule.approved
        else:
            version = rule.latest
        if version is None:
            wanted = f"第 {number} 版" if number else "已批准的版本" if approved else "版本"
            raise CommandError(f"{rule.rule_id} 没有{wanted}")
        text = cs.export_text(version)
        record_export(
            "checks.localrule", 1, {"rule": rule.rule_id, "version": version.number, "source": "cli"}
        )
        if out is None:
            cmd.stdout.write(text)
            continue
        path = out / f"{rule.rule_id}.yaml" if out.is_dir() else out
        path.write_text(text, encoding="utf-8")
        cmd.stdout.write(f"已导出 {rule.rule_id} 第 {version.number} 版 → {path}")


def import_files(cmd, files: list[Path], actor: str | None, region_code: str) -> None:
    from caiwei.accounts.cli import authenticate_actor
    from caiwei.accounts.roles import Capability
    from caiwei.regions.scoping import visible_regions

    if not files:
        raise CommandError("请给出要导入的规则文件")
    if not actor:
        raise CommandError("导入需要 --actor（操作人账号）")
    contents = []
    for path in files:
        try:
            with path.open("rb") as handle:  # the limit and one byte more: enough to tell a file is too large
                contents.append((str(path), handle.read(cs.custom.MAX_BYTES + 1)))
        except OSError as exc:
            raise CommandError(f"{path}：无法读取（{exc.strerror or exc}）；未写入任何内容") from exc
    with authenticate_actor(actor, Capability.MANAGE_TARGETS) as user:
        region = None
        if region_code:
            region = visible_regions(user).filter(code=region_code).first()
            if region is None:
                raise CommandError(f"区划 {region_code} 不存在或不在 {actor} 的授权范围内")
        try:
            versions = cs.import_files(user, contents, region)
        except ValidationError as exc:
            raise CommandError("\n".join([*exc.messages, "以上文件均未写入任何内容"])) from exc
        for (path, _), version in zip(contents, versions, strict=True):
            cmd.stdout.write(f"已导入 {path} → {version.rule.rule_id} 第 {version.number} 版（草稿）")
