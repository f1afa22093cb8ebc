"""Account changes with their rules in one place; pages, the API and commands call these."""

from collections.abc import Iterable
from functools import wraps

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from caiwei.regions.models import Region

from .models import RegionGrant, User, UserRole
from .permissions import ensure
from .roles import TRI_ADMIN_ROLES, Capability, Role


def guarded(capability: str):
    """Check the actor first (a refusal is recorded, not rolled back), then run the change in one transaction.

    ``actor=None`` is the installation itself (first accounts, break-glass commands run by the server operator).
    """

    def decorator(fn):
        @wraps(fn)
        def wrapper(actor: User | None, *args, **kwargs):
            if actor is not None:
                ensure(actor, capability, f"accounts.{fn.__name__}")
            with transaction.atomic():
                return fn(actor, *args, **kwargs)

        return wrapper

    return decorator


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
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"账号“{username}”已存在"})
    user = User(username=username, full_name=full_name, organization=organization, email=email)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@guarded(Capability.GRANT)
def set_roles(actor: User | None, user: User, roles: Iterable[str]) -> set[str]:
    """安全保密管理员设置账号的角色（整体替换）."""
    wanted = _check_roles(roles)
    current = set(user.role_grants.values_list("role", flat=True))
    # Remove first so that swapping one administrator role for another never holds two at once.
    for grant in user.role_grants.filter(role__in=current - wanted):
        grant.delete()
    for role in sorted(wanted - current):
        UserRole.objects.create(user=user, role=role, granted_by=actor)
    user.forget_roles()
    return wanted


@guarded(Capability.GRANT)
def set_regions(actor: User | None, user: User, codes: Iterable[str]) -> set[str]:
    """安全保密管理员设置账号的授权区划（整体替换）."""
    codes = set(codes)
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


def _guard_admin_target(actor: User | None, user: User) -> None:
    # A system administrator who could reset the auditor's password could act as the auditor.
    if actor is not None and actor.pk != user.pk and user.has_role(Role.SECURITY_ADMIN, Role.AUDITOR):
        raise ValidationError("系统管理员不能重置安全保密管理员或安全审计员的密码，请由其本人修改")


def reset_password(actor: User | None, user: User, password: str) -> None:
    """Anyone changes their own password; the system administrator resets others' (not the other two admins')."""
    if actor is not None and actor.pk != user.pk:
        ensure(actor, Capability.MANAGE_ACCOUNTS, "accounts.reset_password")
        _guard_admin_target(actor, user)
    validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()


@guarded(Capability.MANAGE_ACCOUNTS)
def unlock(actor: User | None, user: User) -> None:
    user.failed_logins, user.locked_until = 0, None
    user.save(update_fields=["failed_logins", "locked_until"])


@guarded(Capability.MANAGE_ACCOUNTS)
def set_active(actor: User | None, user: User, active: bool) -> None:
    if actor is not None and actor.pk == user.pk and not active:
        raise ValidationError("不能停用自己的账号")
    user.is_active = active
    user.save(update_fields=["is_active"])


def set_grants(actor: User | None, user: User, roles: Iterable[str], codes: Iterable[str]) -> None:
    """Roles and regions together, all or nothing."""
    with transaction.atomic():
        set_roles(actor, user, roles)
        set_regions(actor, user, codes)
