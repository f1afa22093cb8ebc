from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from caiwei.regions.scoping import visible_regions

from . import services
from .models import User
from .permissions import ensure
from .roles import Capability

router = Router(tags=["账号与授权"])


class UserOut(Schema):
    username: str
    full_name: str
    organization: str
    is_active: bool
    locked: bool
    roles: list[str]
    regions: list[str]


def user_out(user: User) -> dict:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "organization": user.organization,
        "is_active": user.is_active,
        "locked": user.is_locked,
        "roles": sorted(user.role_codes),
        "regions": sorted(r.code for r in user.regions.all()),
    }


class MeOut(UserOut):
    visible_regions: list[str]


@router.get("/me", response=MeOut, summary="当前账号")
def me(request):
    return user_out(request.user) | {
        "visible_regions": list(visible_regions(request.user).values_list("code", flat=True))
    }


@router.get("/users", response=list[UserOut], summary="账号列表（系统管理员、安全保密管理员）")
def list_users(request):
    if not (request.user.can(Capability.MANAGE_ACCOUNTS) or request.user.can(Capability.GRANT)):
        ensure(request.user, Capability.MANAGE_ACCOUNTS, "api:accounts.users")
    return [user_out(u) for u in User.objects.order_by("username").prefetch_related("regions", "role_grants")]


class UserIn(Schema):
    username: str
    password: str
    full_name: str = ""
    organization: str = ""
    email: str = ""


@router.post("/users", response={201: UserOut}, summary="新建账号（系统管理员；不含角色）")
def create_user(request, data: UserIn):
    user = services.create_user(request.user, **data.dict())
    return Status(201, user_out(user))


class RolesIn(Schema):
    roles: list[str]


class RegionsIn(Schema):
    regions: list[str]


@router.put("/users/{username}/roles", response=UserOut, summary="设置角色（安全保密管理员）")
def put_roles(request, username: str, data: RolesIn):
    ensure(request.user, Capability.GRANT, "api:accounts.roles")
    target = get_object_or_404(User, username=username)
    services.set_roles(request.user, target, data.roles)
    return user_out(target)


@router.put("/users/{username}/regions", response=UserOut, summary="设置授权区划（安全保密管理员）")
def put_regions(request, username: str, data: RegionsIn):
    ensure(request.user, Capability.GRANT, "api:accounts.regions")
    target = get_object_or_404(User, username=username)
    services.set_regions(request.user, target, data.regions)
    return user_out(target)


@router.post("/users/{username}/unlock", response=UserOut, summary="解除登录锁定（系统管理员）")
def unlock(request, username: str):
    ensure(request.user, Capability.MANAGE_ACCOUNTS, "api:accounts.unlock")
    target = get_object_or_404(User, username=username)
    services.unlock(request.user, target)
    return user_out(target)
