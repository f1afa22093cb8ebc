from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from caiwei.regions.scoping import visible_regions

from . import services, twofactor
from .models import AccountChangeRequest, ChangeStatus, User
from .permissions import ensure
from .roles import Capability

router = Router(tags=["账号与授权"])


class UserOut(Schema):
    username: str
    full_name: str
    organization: str
    is_active: bool
    locked: bool
    otp: bool
    roles: list[str]
    regions: list[str]


def _target(username: str) -> User:
    if not username.isprintable():
        raise ValidationError({"username": "账号名含不可见或非法字符"})
    user = User.objects.filter(username=username).first()
    if user is None:
        raise HttpError(404, f"账号“{username}”不存在")
    return user


def user_out(user: User) -> dict:
    user.forget_roles()
    return {
        "username": user.username,
        "full_name": user.full_name,
        "organization": user.organization,
        "is_active": user.is_active,
        "locked": user.is_locked,
        "otp": twofactor.has_device(user),
        "roles": sorted(user.role_codes),
        "regions": sorted(r.code for r in user.regions.all()),
    }


class RequestOut(Schema):
    id: int
    subject: str
    kind: str
    kind_label: str
    description: str
    payload: dict
    reason: str
    proposer: str
    proposer_role: str
    proposed_at: str
    status: str
    status_label: str
    decided_by: str | None
    decided_at: str | None
    note: str


def request_out(req: AccountChangeRequest) -> dict:
    return {
        "id": req.pk,
        "subject": req.subject.username,
        "kind": req.kind,
        "kind_label": req.get_kind_display(),
        "description": req.describe(),
        "payload": req.payload,
        "reason": req.reason,
        "proposer": req.proposer.username,
        "proposer_role": req.proposer_role,
        "proposed_at": req.proposed_at.isoformat(),
        "status": req.status,
        "status_label": req.get_status_display(),
        "decided_by": req.decided_by.username if req.decided_by else None,
        "decided_at": req.decided_at.isoformat() if req.decided_at else None,
        "note": req.note,
    }


def _answer(target: User, pending: AccountChangeRequest | None):
    """200 with the account when the change was made, 202 with the request when it awaits a second person."""
    if pending is not None:
        return Status(202, request_out(pending))
    target.refresh_from_db()
    return Status(200, user_out(target))


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
    reason: str = ""


class RegionsIn(Schema):
    regions: list[str]


@router.put(
    "/users/{username}/roles",
    response={200: UserOut, 202: RequestOut},
    summary="设置角色（安全保密管理员；涉及三员角色时返回 202 与待批准的申请）",
)
def put_roles(request, username: str, data: RolesIn):
    ensure(request.user, Capability.GRANT, "api:accounts.roles")
    target = _target(username)
    return _answer(target, services.set_roles(request.user, target, data.roles, reason=data.reason))


@router.put("/users/{username}/regions", response=UserOut, summary="设置授权区划（安全保密管理员）")
def put_regions(request, username: str, data: RegionsIn):
    ensure(request.user, Capability.GRANT, "api:accounts.regions")
    target = _target(username)
    services.set_regions(request.user, target, data.regions)
    return user_out(target)


@router.post(
    "/users/{username}/unlock",
    response={200: UserOut, 202: RequestOut},
    summary="解除登录锁定（系统管理员；三员账号返回 202 与待批准的申请）",
)
def unlock(request, username: str):
    ensure(request.user, Capability.MANAGE_ACCOUNTS, "api:accounts.unlock")
    target = _target(username)
    return _answer(target, services.unlock(request.user, target))


class StatusIn(Schema):
    action: str  # deactivate, activate, lock, unlock, reset_otp
    reason: str = ""


@router.post(
    "/users/{username}/status",
    response={200: UserOut, 202: RequestOut},
    summary="停用、启用、锁定、解锁、重置动态口令（系统管理员；三员账号返回 202 与待批准的申请）",
)
def change_status(request, username: str, data: StatusIn):
    ensure(request.user, Capability.MANAGE_ACCOUNTS, "api:accounts.status")
    target = _target(username)
    return _answer(target, services.change_status(request.user, target, data.action, reason=data.reason))


class PasswordIn(Schema):
    password: str
    reason: str = ""


@router.post(
    "/users/{username}/password",
    response={200: UserOut, 202: RequestOut},
    summary="重置密码（系统管理员；三员账号返回 202 与待批准的申请）",
)
def reset_password(request, username: str, data: PasswordIn):
    ensure(request.user, Capability.MANAGE_ACCOUNTS, "api:accounts.password")
    target = _target(username)
    return _answer(target, services.reset_password(request.user, target, data.password, reason=data.reason))


@router.get("/requests", response=list[RequestOut], summary="涉及三员的账号变更申请（三员）")
def list_requests(request, status: str = ""):
    ensure(request.user, Capability.APPROVE_CHANGES, "api:accounts.requests")
    requests = AccountChangeRequest.objects.select_related("subject", "proposer", "decided_by")
    if status in ChangeStatus.values:
        requests = requests.filter(status=status)
    return [request_out(r) for r in requests[:500]]


class DecisionIn(Schema):
    decision: str  # approve, reject, withdraw
    note: str = ""


@router.post(
    "/requests/{request_id}/decision",
    response=RequestOut,
    summary="批准、驳回（提出人与对象以外、另一职责的三员）或撤回（提出人）申请",
)
def decide(request, request_id: int, data: DecisionIn):
    ensure(request.user, Capability.APPROVE_CHANGES, "api:accounts.decide")
    req = get_object_or_404(AccountChangeRequest, pk=request_id)
    return request_out(services.decide(request.user, req, data.decision, data.note))
