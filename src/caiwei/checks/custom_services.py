"""本地规则 from Django: write, version, submit, approve, export, import, dry-run on the sandbox, and the rules a run
takes. Every path (page, API, command) comes through here; every write is audited.

- A rule belongs to a region (its author's); users of that region see it; a 项目经理 of that region approves it.
- Each save is a new immutable version (who, when, what); rolling back saves an old text as a new version.
- Draft → submitted → approved / rejected (with a reason); the author never approves their own version.
- On a production target a run takes the last approved version (a newer draft waits for its own approval);
  on the sandbox it takes the latest version, so a rule can be tried in a full run before approval.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import time
from datetime import date

import sqlalchemy as sa
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability, Role
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.regions.scoping import visible_regions

from . import custom
from .custom import LOCAL_PACK, RuleInvalid
from .custom_models import LocalRule, LocalRuleVersion
from .engine import Rule, RuleError, select_rules, shipped_packs, shipped_rule

Status = LocalRuleVersion.Status


def visible_local_rules(user):
    return LocalRule.objects.visible_to(user).select_related("region", "approved", "created_by")


def visible_local_versions(user):
    return LocalRuleVersion.objects.filter(rule__in=visible_local_rules(user))


def author_regions(user):
    """The regions a user may file a rule under: their granted regions (not the whole subtree), highest first."""
    return user.regions.order_by("path")


def _own(user, rule: LocalRule) -> None:
    if not visible_local_rules(user).filter(pk=rule.pk).exists():
        raise PermissionDenied("无权访问该规则")


def _invalid(exc: RuleError) -> ValidationError:
    return ValidationError(getattr(exc, "problems", None) or [str(exc)])


def _audit(action, version: LocalRuleVersion, what: str, **extra) -> None:
    record(
        action,
        object_type="checks.localrule",
        object_id=str(version.rule_id),
        object_repr=f"{version.rule.rule_id} 第 {version.number} 版"[:200],
        after={
            "action": what,
            "version": version.number,
            "status": version.status,
            "sha256": version.sha256,
            **extra,
        },
    )


def validate(text: str) -> Rule:
    """The rule of ``text`` or ValidationError with every problem (Chinese, naming field or line)."""
    try:
        return custom.check_text(text)
    except RuleError as exc:
        raise _invalid(exc) from exc


def _new_version(user, rule: LocalRule, text: str, note: str) -> LocalRuleVersion:
    number = (rule.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = LocalRuleVersion.objects.create(
        rule=rule, number=number, text=text, sha256=custom.text_hash(text), note=note[:100], author=user
    )
    _audit(AuditAction.CREATE if number == 1 else AuditAction.UPDATE, version, note)
    return version


def create_rule(user, text: str, region=None, note: str = "新建", source_rule: str = "") -> LocalRuleVersion:
    """A new local rule with its first (draft) version."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule")
    text = custom.strip_meta(text)
    rule = validate(text)
    region = region or author_regions(user).first()
    if region is None or not visible_regions(user).filter(pk=region.pk).exists():
        raise PermissionDenied("无权在该区划编写规则")
    if shipped_rule(rule.id) is not None:
        raise ValidationError(f"字段 id：{rule.id} 是出厂规则的编号，本地规则请另取编号（如 L-{rule.id}）")
    if LocalRule.objects.filter(rule_id=rule.id).exists():
        raise ValidationError(f"字段 id：本地规则 {rule.id} 已存在，请另取编号或在该规则下保存新版本")
    with transaction.atomic():
        local = LocalRule.objects.create(
            rule_id=rule.id,
            region=region,
            created_by=user,
            source_rule=source_rule,
            source_hash=custom.shipped_hash(source_rule) if source_rule else "",
        )
        return _new_version(user, local, text, note)


def copy_shipped(user, shipped_id: str, new_id: str = "", region=None) -> LocalRuleVersion:
    """A local copy of a shipped rule, remembering which shipped file (and its hash) it came from."""
    if shipped_rule(shipped_id) is None:
        raise ValidationError(f"没有编号为 {shipped_id} 的出厂规则")
    text = custom.copy_of_shipped(shipped_id, new_id or f"L-{shipped_id}")
    return create_rule(user, text, region, note=f"复制自出厂规则 {shipped_id}", source_rule=shipped_id)


def save_version(user, rule: LocalRule, text: str, note: str = "编辑") -> LocalRuleVersion:
    """A new draft version of ``rule`` (its id may not change)."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule")
    _own(user, rule)
    text = custom.strip_meta(text)
    parsed = validate(text)
    if parsed.id != rule.rule_id:
        raise ValidationError(f"字段 id：规则编号不能修改（应为 {rule.rule_id}），另取编号请新建规则")
    latest = rule.latest
    if latest is not None and latest.text == text:
        raise ValidationError("内容与当前版本相同，未保存新版本")
    with transaction.atomic():
        LocalRule.objects.select_for_update().filter(pk=rule.pk).first()
        return _new_version(user, rule, text, note)


def rollback(user, rule: LocalRule, number: int) -> LocalRuleVersion:
    """Roll back: a new version with the text of version ``number``."""
    old = rule.versions.filter(number=number).first()
    if old is None:
        raise ValidationError(f"规则 {rule.rule_id} 没有第 {number} 版")
    return save_version(user, rule, old.text, note=f"回滚到第 {number} 版")


def submit(user, version: LocalRuleVersion) -> LocalRuleVersion:
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule.submit")
    _own(user, version.rule)
    if version.number != version.rule.latest.number:
        raise ValidationError(f"只能提交最新版本（第 {version.rule.latest.number} 版）")
    if version.status not in (Status.DRAFT, Status.REJECTED):
        raise ValidationError(f"第 {version.number} 版{version.get_status_display()}，无需再提交")
    version.status, version.submitted_at = Status.SUBMITTED, timezone.now()
    version.save(update_fields=["status", "submitted_at"])
    _audit(AuditAction.UPDATE, version, "提交审批")
    return version


def decide(user, version: LocalRuleVersion, approve: bool, reason: str = "") -> LocalRuleVersion:
    """批准或驳回: a 项目经理 of the rule's region, never the version's author; a rejection gives its reason."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule.decide")
    _own(user, version.rule)
    if not user.has_role(Role.PROJECT_MANAGER):
        raise PermissionDenied("只有项目经理可以审批本地规则")
    if version.author_id == user.pk:
        raise PermissionDenied("不能审批自己编写的版本")
    if version.status != Status.SUBMITTED:
        raise ValidationError(f"第 {version.number} 版{version.get_status_display()}，不在待审批状态")
    reason = (reason or "").strip()
    if not approve and not reason:
        raise ValidationError({"reason": "驳回须填写理由"})
    validate(version.text)  # the schema may have moved since it was saved
    with transaction.atomic():
        version.status = Status.APPROVED if approve else Status.REJECTED
        version.decided_by, version.decided_at, version.reason = user, timezone.now(), reason[:2000]
        version.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        if approve:
            LocalRule.objects.filter(pk=version.rule_id).update(approved=version)
        _audit(AuditAction.UPDATE, version, "批准" if approve else "驳回", reason=reason[:200])
    version.rule.refresh_from_db()
    return version


# --- diff, shipped originals, files ---------------------------------------------------------------------------------


def diff(old: LocalRuleVersion | None, new: LocalRuleVersion) -> list[str]:
    """Unified diff lines from ``old`` to ``new`` (difflib)."""
    before = old.text.splitlines() if old else []
    return list(
        difflib.unified_diff(
            before,
            new.text.splitlines(),
            fromfile=f"第 {old.number} 版" if old else "（无）",
            tofile=f"第 {new.number} 版",
            lineterm="",
        )
    )


def shipped_changed(rule: LocalRule) -> bool:
    """Whether the shipped rule this one was copied from has changed (a release) since the copy."""
    return bool(rule.source_rule) and custom.shipped_hash(rule.source_rule) != rule.source_hash


def export_text(version: LocalRuleVersion) -> str:
    """The rule file as shipped rules are written, with the version's metadata appended (ignored on import)."""
    rule = version.rule
    meta = {
        "rule": rule.rule_id,
        "number": version.number,
        "status": str(version.status),
        "author": version.author.username if version.author else "",
        "saved_at": timezone.localtime(version.created_at).isoformat(timespec="seconds"),
        "note": version.note,
        "region": rule.region.code,
        "sha256": version.sha256,
    }
    if rule.source_rule:
        meta.update(source_rule=rule.source_rule, source_hash=rule.source_hash)
    if version.decided_by:
        meta.update(decided_by=version.decided_by.username, reason=version.reason)
    return version.text.rstrip("\n") + "\n" + custom.meta_block(meta)


def export_record(user, version: LocalRuleVersion) -> None:
    record(
        AuditAction.EXPORT,
        object_type="checks.localrule",
        object_id=str(version.rule_id),
        object_repr=f"{version.rule.rule_id} 第 {version.number} 版",
        after={"action": "导出", "version": version.number},
    )


def import_text(user, text: str, region=None) -> LocalRuleVersion:
    """A rule file (as exported or written by hand) becomes a new draft version: of the local rule with its id when
    the user may see it, else of a new rule. Judged as a save is; on any problem nothing is written."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule.import")
    text = custom.strip_meta(text)
    parsed = validate(text)
    existing = LocalRule.objects.filter(rule_id=parsed.id).first()
    at = custom.key_line(text, "id")
    try:
        if existing is None:
            return create_rule(user, text, region, note="导入")
        if not visible_local_rules(user).filter(pk=existing.pk).exists():
            raise ValidationError(f"字段 id：规则编号 {parsed.id} 已被其他区划的本地规则使用")
        return save_version(user, existing, text, note="导入")
    except ValidationError as exc:  # an id taken, or the same text as the current version: name the line
        raise ValidationError(
            [
                m if m.startswith("第 ") else f"{at if m.startswith('字段 id') else '第 1 行 '}{m}"
                for m in exc.messages
            ]
        ) from exc


def import_files(user, files: list[tuple[str, bytes | str]], region=None) -> list[LocalRuleVersion]:
    """Import several rule files at once (command line, page, API). Every file is judged first (encoding, size, YAML,
    fields, SQL), and the ids of the files must differ; then all are written in one transaction. On any problem:
    ValidationError, one message per problem, each starting with the file's name (and naming line and field), and
    nothing of any file is written."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule.import")
    if not files:
        raise ValidationError("请给出要导入的规则文件")
    problems: list[str] = []
    judged: list[tuple[str, str, Rule]] = []
    for name, content in files:
        try:
            text = custom.decode(content) if isinstance(content, bytes) else content
            text = custom.strip_meta(text)
            judged.append((name, text, custom.check_text(text)))
        except RuleError as exc:
            problems += [f"{name}：{p}" for p in getattr(exc, "problems", None) or [str(exc)]]
    first: dict[str, str] = {}
    for name, text, rule in judged:
        if rule.id in first:
            problems.append(
                f"{name}：{custom.key_line(text, 'id')}字段 id：规则编号 {rule.id} 与 {first[rule.id]} 相同"
                "（一次导入的各文件编号须不同）"
            )
        first.setdefault(rule.id, name)
    if problems:
        raise ValidationError(problems)
    versions = []
    with transaction.atomic():  # one refusal while writing: nothing of any file stays
        for name, text, _ in judged:
            try:
                versions.append(import_text(user, text, region))
            except ValidationError as exc:
                raise ValidationError([f"{name}：{m}" for m in exc.messages]) from exc
    return versions


# --- dry run on the sandbox ----------------------------------------------------------------------------------------


def _sandbox_as_of(engine: sa.Engine) -> date:
    """The sandbox's own as-of date (its generation spec, kept in sandbox_info), else the manifest's, else today."""
    from caiwei.sandbox.service import manifest_path

    try:
        with engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT info_value FROM sandbox_info WHERE info_key = 'manifest_spec'")
            ).scalar()
        return date.fromisoformat(json.loads(value)["as_of"])
    except (sa.exc.SQLAlchemyError, ValueError, KeyError, TypeError):
        pass
    try:
        spec = json.loads(manifest_path().read_text()).get("spec") or {}
        return date.fromisoformat(spec["as_of"])
    except (OSError, ValueError, KeyError, TypeError):
        return timezone.localdate()


def dry_run(rule: Rule, timeout_s: int = 30) -> dict:
    """Run ``rule`` once on the platform's sandbox (read-only, under a timeout): its row count, time and a few
    masked rows; ``error`` in Chinese when it cannot."""
    from caiwei.sandbox.service import default_url

    from .runner import Options, connect, run_rules

    started = time.monotonic()
    engine = connect(default_url())
    try:
        if "pay_voucher" not in set(sa.inspect(engine).get_table_names()):
            return {
                "error": "演练库尚未载入，无法试运行（先执行 caiwei sandbox demo）",
                "count": None,
                "seconds": 0,
            }
        options = Options(
            as_of=_sandbox_as_of(engine), sample=True, sample_size=5, key_cap=1000, timeout_s=timeout_s
        )
        outcome = run_rules(engine, [rule], options)[0]
    except sa.exc.SQLAlchemyError as exc:
        from .runner import explain_error

        return {"error": explain_error(exc, timeout_s), "count": None, "seconds": time.monotonic() - started}
    finally:
        engine.dispose()
    return {
        "count": outcome.count,
        "amount": outcome.amount,
        "seconds": round(time.monotonic() - started, 3),
        "error": outcome.error,
        "columns": outcome.columns,
        "sample": outcome.sample,
        "sql": outcome.sql,
        "as_of": options.as_of.isoformat(),
    }


def check_and_try(user, text: str) -> dict:
    """校验并试运行: the problems, or the dry run on the sandbox."""
    ensure(user, Capability.MANAGE_TARGETS, "checks.localrule.validate")
    try:
        rule = custom.check_text(text)
    except RuleError as exc:
        return {"ok": False, "problems": getattr(exc, "problems", [str(exc)])}
    result = dry_run(rule)
    return {"ok": not result.get("error"), "problems": [], "rule": rule.id, "dry_run": result}


# --- the rules a run takes ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _rule_of(text: str) -> Rule | None:
    try:
        return custom.check_text(text)
    except RuleError:
        return None


def local_rules_for(database) -> list[Rule]:
    """The local rules a run on ``database`` takes: those of its target's region or above; on the sandbox each
    rule's latest version, elsewhere only its approved version."""
    target = database.target
    path = target.region.path
    parts = [p for p in path.split("/") if p]
    paths = ["".join(f"{p}/" for p in parts[: i + 1]) for i in range(len(parts))]
    rules = LocalRule.objects.filter(region__path__in=paths).select_related("approved").order_by("rule_id")
    shipped_ids = {r.id for pack in shipped_packs().values() for r in pack.rules}
    chosen = []
    for local in rules:
        version = local.latest if target.is_sandbox else local.approved
        if version is None or (target.is_sandbox and version.status == Status.REJECTED):
            version = local.approved
        if version is None:
            continue
        rule = _rule_of(version.text)
        if rule is not None and rule.id not in shipped_ids:
            chosen.append(dataclasses.replace(rule, version=version.number))
    return chosen


def rule_version_that_ran(user, result):
    """(the local rule, its Rule as of the version that ran) for a run result, when the user may see the rule."""
    local = visible_local_rules(user).filter(rule_id=result.rule_id).first()
    version = local.versions.filter(number=result.rule_version).first() if local else None
    return local, (_rule_of(version.text) if version else None)


def split_packs(packs: str | list[str]) -> tuple[list[str], bool]:
    names = packs.split(",") if isinstance(packs, str) else list(packs)
    names = [n.strip() for n in names if n.strip()]
    local = not names or "all" in names or LOCAL_PACK in names
    return [n for n in names if n != LOCAL_PACK], local


def rules_for_run(packs: str | list[str], database=None) -> list[Rule]:
    """The shipped rules of ``packs`` plus, for “all” or “local”（本地规则）, the local rules ``database`` takes."""
    shipped, local = split_packs(packs)
    rules = select_rules(shipped) if shipped or not local else []
    if local and database is not None:
        rules += local_rules_for(database)
    return rules


__all__ = ["RuleInvalid"]
