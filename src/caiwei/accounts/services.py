"""Account changes with their rules in one place; pages, the admin, the API and commands all call these.

- Nobody changes their own roles, regions or status (a password is the one thing each changes alone).
- A change touching the three administrators — granting or revoking one of their roles, or deactivating,
  activating, locking, unlocking, resetting the password or the second factor of one of them — is only
  proposed here (``AccountChangeRequest``) and happens when a different person approves it.
- Each of the three roles always keeps an active holder.

Functions that may need a second person return the pending request, or None when the change was made.
"""

from collections.abc import Iterable
from functools import wraps

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from caiwei.audit.log import record, record_denied
from caiwei.audit.models import AuditAction
from caiwei.regions.models import Region

from . import twofactor
from .models import (
    LOCKED_FOREVER,
    AccountChangeRequest,
    ChangeKind,
    ChangeStatus,
    RegionGrant,
    User,
    UserRole,
)
from .permissions import ensure
from .roles import TRI_ADMIN_ROLES, Capability, Role

# Who may propose each kind: role changes belong to the security administrator, the rest to the system one.
PROPOSER_CAPABILITY = {kind: Capability.MANAGE_ACCOUNTS for kind in ChangeKind} | {
    ChangeKind.SET_ROLES: Capability.GRANT
}


def guarded(capability: str, *, not_self: str = ""):
    """Check the actor first (a refusal is recorded, not rolled back), then run the change in one transaction.

    ``not_self`` names the change when nobody may make it to their own account (the second argument).
    ``actor=None`` is the installation itself (first accounts, break-glass commands run by the server operator).
    """

    def decorator(fn):
        @wraps(fn)
        def wrapper(actor: User | None, *args, **kwargs):
            if actor is not None:
                ensure(actor, capability, f"accounts.{fn.__name__}")
                if not_self:
                    _not_self(actor, args[0], not_self)
            with transaction.atomic():
                return fn(actor, *args, **kwargs)

        return wrapper

    return decorator


def _deny(what: str, message: str):
    record_denied(what, "accounts.separation")
    raise PermissionDenied(message)


def _not_self(actor: User | None, user: User, what: str) -> None:
    if actor is not None and actor.pk == user.pk:
        _deny(f"accounts.{what}", f"三员分设：不能{what}")


def _tri_roles(user: User) -> set[str]:
    user.forget_roles()
    return set(user.role_codes & TRI_ADMIN_ROLES)


def _storable_text(field: str, value) -> None:
    """Text the database can hold: no NUL, no lone surrogate (else a 500 instead of a message)."""
    if not isinstance(value, str):
        raise ValidationError({field: "须为文本"})
    if "\x00" in value:
        raise ValidationError({field: "不能含空字符（NUL）"})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError({field: "含无法编码的字符"}) from None


def _check_roles(roles: Iterable[str]) -> set[str]:
    roles = set(roles)
    unknown = roles - set(Role.values)
    if unknown:
        raise ValidationError({"roles": f"未知角色：{'、'.join(sorted(unknown))}"})
    admins = roles & TRI_ADMIN_ROLES
    if len(admins) > 1:
        names = "、".join(Role(r).label for r in Role if r in admins)
        raise ValidationError({"roles": f"三员分设：一个账号不能同时担任{names}"})
    return roles


def _ensure_holders_remain(user: User, roles: Iterable[str], *, unlocked: bool = False) -> None:
    """Refuse when ``user`` is the last active (and, for a lock, unlocked) holder of one of ``roles``."""
    now = timezone.now()
    for role in sorted(roles):
        holders = User.objects.filter(role_grants__role=role).order_by("pk")
        # Lock the holders so that two approvals at once cannot each leave "one other" and end with none.
        list(holders.select_for_update(of=("self",)).values_list("pk", flat=True))
        active = holders.filter(is_active=True)
        if unlocked:
            active = active.filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        if active.filter(pk=user.pk).exists() and not active.exclude(pk=user.pk).exists():
            raise ValidationError(
                f"三员分设：{user.username} 是唯一在用的{Role(role).label}，须至少保留一名，不能撤销、停用或锁定"
            )


def _propose(
    actor: User, subject: User, kind: str, payload: dict | None = None, *, secret: str = "", reason: str = ""
) -> AccountChangeRequest:
    ensure(actor, PROPOSER_CAPABILITY[kind], f"accounts.propose.{kind}")
    proposer_role = next(iter(sorted(_tri_roles(actor))), None)
    if proposer_role is None:
        _deny(f"accounts.propose.{kind}", "只有三员可以提出涉及三员的账号变更")
    pending = AccountChangeRequest.objects.filter(
        subject=subject, kind=kind, status=ChangeStatus.PENDING
    ).first()
    if pending is not None:
        raise ValidationError(
            f"{subject.username} 已有待批准的“{pending.get_kind_display()}”申请 #{pending.pk}"
        )
    _precheck(kind, subject, payload or {})
    return AccountChangeRequest.objects.create(
        subject=subject,
        kind=kind,
        payload=payload or {},
        secret=secret,
        reason=reason[:200],
        proposer=actor,
        proposer_role=proposer_role,
    )


def _precheck(kind: str, subject: User, payload: dict) -> None:
    """What approval would refuse anyway is refused at once (the last holder, two administrator roles)."""
    with transaction.atomic():
        if kind == ChangeKind.SET_ROLES:
            wanted = _check_roles(payload.get("roles", []))
            _ensure_holders_remain(subject, _tri_roles(subject) - wanted)
        elif kind == ChangeKind.DEACTIVATE:
            _ensure_holders_remain(subject, _tri_roles(subject))
        elif kind == ChangeKind.LOCK:
            _ensure_holders_remain(subject, _tri_roles(subject), unlocked=True)


def _needs_second_person(actor: User | None, subject: User) -> bool:
    return actor is not None and bool(_tri_roles(subject))


# --- accounts -----------------------------------------------------------------------------------------


@guarded(Capability.MANAGE_ACCOUNTS)
def create_user(
    actor: User | None,
    *,
    username: str,
    password: str,
    full_name: str = "",
    organization: str = "",
    email: str = "",
) -> User:
    """系统管理员创建账号（不含角色：角色由安全保密管理员授予）. ``actor=None`` only for first installation."""
    fields = {"username": username, "full_name": full_name, "organization": organization, "email": email}
    for name, value in fields.items():
        _storable_text(name, value)
    try:
        User._meta.get_field("username").run_validators(username)
    except ValidationError as exc:
        raise ValidationError({"username": exc.messages}) from None
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"账号“{username}”已存在"})
    user = User(username=username, full_name=full_name, organization=organization, email=email)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@guarded(Capability.MANAGE_ACCOUNTS, not_self="删除自己的账号")
def delete_user(actor: User | None, user: User) -> None:
    if _tri_roles(user):
        _deny("accounts.delete_user", "三员账号不能直接删除：请先经双人审批撤销其三员角色")
    user.delete()


# --- roles and regions (安全保密管理员) -------------------------------------------------------------------


@guarded(Capability.GRANT, not_self="修改自己的角色")
def set_roles(
    actor: User | None, user: User, roles: Iterable[str], *, reason: str = ""
) -> AccountChangeRequest | None:
    """安全保密管理员设置账号的角色（整体替换）; a change of an administrator role becomes a request."""
    wanted = _check_roles(roles)
    current = set(user.role_grants.values_list("role", flat=True))
    if wanted == current:
        return None
    if actor is not None and (current ^ wanted) & TRI_ADMIN_ROLES:
        return _propose(actor, user, ChangeKind.SET_ROLES, {"roles": sorted(wanted)}, reason=reason)
    _apply_roles(actor, user, wanted)
    return None


def _apply_roles(actor: User | None, user: User, wanted: set[str]) -> None:
    wanted = _check_roles(wanted)
    current = set(user.role_grants.values_list("role", flat=True))
    _ensure_holders_remain(user, (current - wanted) & TRI_ADMIN_ROLES)
    # Remove first so that swapping one administrator role for another never holds two at once.
    for grant in user.role_grants.filter(role__in=current - wanted):
        grant.delete()
    for role in sorted(wanted - current):
        UserRole.objects.create(user=user, role=role, granted_by=actor)
    user.forget_roles()


@guarded(Capability.GRANT, not_self="修改自己的授权区划")
def set_regions(actor: User | None, user: User, codes: Iterable[str]) -> set[str]:
    """安全保密管理员设置账号的授权区划（整体替换）."""
    codes = set(codes)
    malformed = sorted(
        repr(c) for c in codes if not (isinstance(c, str) and c.isprintable() and 0 < len(c) <= 20)
    )
    if malformed:
        raise ValidationError({"regions": f"区划代码格式不正确：{'、'.join(malformed)}"})
    regions = {r.code: r for r in Region.objects.filter(code__in=codes)}
    missing = codes - set(regions)
    if missing:
        raise ValidationError({"regions": f"区划代码不存在：{'、'.join(sorted(missing))}"})
    current = set(user.region_grants.values_list("region__code", flat=True))
    for grant in user.region_grants.filter(region__code__in=current - codes):
        grant.delete()
    for code in sorted(codes - current):
        RegionGrant.objects.create(user=user, region=regions[code], granted_by=actor)
    return codes


def set_grants(
    actor: User | None, user: User, roles: Iterable[str], codes: Iterable[str]
) -> AccountChangeRequest | None:
    """Roles and regions together, all or nothing (an administrator role change waits for approval)."""
    if actor is not None:
        ensure(actor, Capability.GRANT, "accounts.set_grants")
        _not_self(actor, user, "修改自己的角色或授权区划")
    with transaction.atomic():
        pending = set_roles(actor, user, roles)
        set_regions(actor, user, codes)
    return pending


# --- status (系统管理员) ----------------------------------------------------------------------------------


@guarded(Capability.MANAGE_ACCOUNTS, not_self="启用或停用自己的账号")
def set_active(
    actor: User | None, user: User, active: bool, *, reason: str = ""
) -> AccountChangeRequest | None:
    if user.is_active == active:
        return None
    kind = ChangeKind.ACTIVATE if active else ChangeKind.DEACTIVATE
    if _needs_second_person(actor, user):
        return _propose(actor, user, kind, reason=reason)
    _apply_active(user, active)
    return None


def _apply_active(user: User, active: bool) -> None:
    if not active:
        _ensure_holders_remain(user, _tri_roles(user))
    user.is_active = active
    user.save(update_fields=["is_active"])


@guarded(Capability.MANAGE_ACCOUNTS, not_self="锁定自己的账号")
def lock(actor: User | None, user: User, until=None, *, reason: str = "") -> AccountChangeRequest | None:
    """Lock sign-in until ``until`` (default: until someone unlocks)."""
    until = until or LOCKED_FOREVER
    if until <= timezone.now():
        raise ValidationError({"until": "锁定截止时间须晚于现在"})
    if _needs_second_person(actor, user):
        return _propose(actor, user, ChangeKind.LOCK, {"until": until.isoformat()}, reason=reason)
    _apply_lock(user, until)
    return None


def _apply_lock(user: User, until) -> None:
    _ensure_holders_remain(user, _tri_roles(user), unlocked=True)
    user.locked_until = until
    user.save(update_fields=["locked_until"])


@guarded(Capability.MANAGE_ACCOUNTS, not_self="解锁自己的账号")
def unlock(actor: User | None, user: User, *, reason: str = "") -> AccountChangeRequest | None:
    if _needs_second_person(actor, user):
        return _propose(actor, user, ChangeKind.UNLOCK, reason=reason)
    _apply_unlock(user)
    return None


def _apply_unlock(user: User) -> None:
    user.failed_logins, user.locked_until = 0, None
    user.save(update_fields=["failed_logins", "locked_until"])


def reset_password(
    actor: User | None, user: User, password: str, *, reason: str = ""
) -> AccountChangeRequest | None:
    """Anyone changes their own password; the system administrator resets others' (an administrator's: with
    a second person's approval; only the hash waits in the request)."""
    if actor is not None and actor.pk != user.pk:
        ensure(actor, Capability.MANAGE_ACCOUNTS, "accounts.reset_password")
    validate_password(password, user)
    if actor is not None and actor.pk != user.pk and _tri_roles(user):
        with transaction.atomic():
            return _propose(
                actor, user, ChangeKind.RESET_PASSWORD, secret=make_password(password), reason=reason
            )
    with transaction.atomic():
        user.set_password(password)
        user.save()
    return None


@guarded(Capability.MANAGE_ACCOUNTS, not_self="重置自己的动态口令")
def reset_otp(actor: User | None, user: User, *, reason: str = "") -> AccountChangeRequest | None:
    """Unbind a lost or replaced authenticator; an administrator enrols again at the next sign-in."""
    if not twofactor.has_device(user):
        raise ValidationError(f"{user.username} 未绑定动态口令")
    if _needs_second_person(actor, user):
        return _propose(actor, user, ChangeKind.RESET_OTP, reason=reason)
    twofactor.remove(user)
    return None


# --- the second person ---------------------------------------------------------------------------------


def may_decide(actor: User, req: AccountChangeRequest) -> str | None:
    """Why ``actor`` may not approve or reject ``req`` (None: they may)."""
    if not (actor.is_authenticated and actor.can(Capability.APPROVE_CHANGES)):
        return "只有三员可以审批账号变更"
    if actor.pk == req.proposer_id:
        return "双人审批：提出人不能批准或驳回自己的申请（可以撤回）"
    if actor.pk == req.subject_id:
        return "双人审批：不能审批针对自己账号的申请"
    if req.proposer_role in actor.role_codes:
        return f"双人审批：须由{Role(req.proposer_role).label}以外的另一名三员审批"
    return None


def _decidable(actor: User, req: AccountChangeRequest, what: str) -> None:
    refusal = may_decide(actor, req)
    if refusal:
        _deny(f"accounts.{what}", refusal)


def _locked_pending(req: AccountChangeRequest) -> AccountChangeRequest:
    req = (
        AccountChangeRequest.objects.select_for_update().select_related("subject", "proposer").get(pk=req.pk)
    )
    if req.status != ChangeStatus.PENDING:
        raise ValidationError(f"申请 #{req.pk} 已{req.get_status_display()}，不能再处理")
    return req


def approve(actor: User, req: AccountChangeRequest, note: str = "") -> AccountChangeRequest:
    """A second person approves: the change is made now, as the approver, with every rule checked again."""
    _decidable(actor, req, "approve")
    with transaction.atomic():
        req = _locked_pending(req)
        proposer, subject = req.proposer, req.subject
        if not proposer.can(PROPOSER_CAPABILITY[req.kind]):
            raise ValidationError(f"提出人 {proposer.username} 已不再具有提出该申请的职责，请驳回")
        if req.kind == ChangeKind.SET_ROLES:
            _apply_roles(actor, subject, set(req.payload.get("roles", [])))
        elif req.kind in (ChangeKind.ACTIVATE, ChangeKind.DEACTIVATE):
            _apply_active(subject, req.kind == ChangeKind.ACTIVATE)
        elif req.kind == ChangeKind.LOCK:
            until = parse_datetime(req.payload.get("until", "")) or LOCKED_FOREVER
            if until <= timezone.now():
                raise ValidationError("申请的锁定截止时间已过，请驳回")
            _apply_lock(subject, until)
        elif req.kind == ChangeKind.UNLOCK:
            _apply_unlock(subject)
        elif req.kind == ChangeKind.RESET_PASSWORD:
            subject.password = req.secret
            subject.password_changed_at = timezone.now()
            subject.save(update_fields=["password", "password_changed_at"])
        elif req.kind == ChangeKind.RESET_OTP:
            twofactor.remove(subject)
        req.status, req.decided_by, req.decided_at, req.note = (
            ChangeStatus.APPROVED,
            actor,
            timezone.now(),
            note[:200],
        )
        req.secret = ""
        req.save()
        record(
            AuditAction.ADMIN,
            obj=req,
            detail={
                "event": "双人审批：批准并执行",
                "kind": req.kind,
                "subject": subject.username,
                "proposer": proposer.username,
                "approver": actor.username,
            },
        )
    return req


def reject(actor: User, req: AccountChangeRequest, note: str = "") -> AccountChangeRequest:
    _decidable(actor, req, "reject")
    with transaction.atomic():
        req = _locked_pending(req)
        req.status, req.decided_by, req.decided_at, req.note = (
            ChangeStatus.REJECTED,
            actor,
            timezone.now(),
            note[:200],
        )
        req.secret = ""
        req.save()
    return req


def withdraw(actor: User, req: AccountChangeRequest) -> AccountChangeRequest:
    if actor.pk != req.proposer_id:
        _deny("accounts.withdraw", "只有提出人可以撤回申请")
    with transaction.atomic():
        req = _locked_pending(req)
        req.status, req.decided_by, req.decided_at = ChangeStatus.WITHDRAWN, actor, timezone.now()
        req.secret = ""
        req.save()
    return req


def decide(actor: User, req: AccountChangeRequest, decision: str, note: str = "") -> AccountChangeRequest:
    if decision == "approve":
        return approve(actor, req, note)
    if decision == "reject":
        return reject(actor, req, note)
    if decision == "withdraw":
        return withdraw(actor, req)
    raise ValidationError({"decision": "决定须是 approve（批准）、reject（驳回）或 withdraw（撤回）"})


STATUS_ACTIONS = {
    "deactivate": ("停用", lambda actor, user, **kw: set_active(actor, user, False, **kw)),
    "activate": ("启用", lambda actor, user, **kw: set_active(actor, user, True, **kw)),
    "lock": ("锁定", lambda actor, user, **kw: lock(actor, user, **kw)),
    "unlock": ("解锁", lambda actor, user, **kw: unlock(actor, user, **kw)),
    "reset_otp": ("重置动态口令", lambda actor, user, **kw: reset_otp(actor, user, **kw)),
}


def change_status(actor: User, user: User, action: str, *, reason: str = "") -> AccountChangeRequest | None:
    """One entry for the status actions of the page, the API and the command."""
    if action not in STATUS_ACTIONS:
        raise ValidationError({"action": f"未知操作“{action}”，可选：{'、'.join(STATUS_ACTIONS)}"})
    return STATUS_ACTIONS[action][1](actor, user, reason=reason)
