"""The HTTP API at /api/ (OpenAPI at /api/docs): session auth for the pages, bearer tokens for scripts."""

from datetime import timedelta

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status
from ninja.security import HttpBearer, django_auth
from pydantic import field_validator

from caiwei.accounts.api import router as accounts_router
from caiwei.accounts.models import ApiToken
from caiwei.accounts.tokens import user_for_bearer
from caiwei.audit.api import router as audit_router
from caiwei.bizcalendar.api import router as calendar_router
from caiwei.checks.api import router as checks_router
from caiwei.checks.custom_api import router as local_rules_router
from caiwei.dataops.api_backups import router as data_backups_router
from caiwei.dataops.api_changes import router as data_changes_router
from caiwei.dataops.api_console import router as data_query_router
from caiwei.desk.api import router as desk_router
from caiwei.inspections.api import router as inspections_router
from caiwei.jobs.api import router as jobs_router
from caiwei.monitor.api import router as monitor_router
from caiwei.recon.api import router as recon_router
from caiwei.recon.api_statements import signoffs_router as recon_signoffs_router
from caiwei.recon.api_statements import statements_router as recon_statements_router
from caiwei.regions.api import router as regions_router
from caiwei.sandbox.api import router as sandbox_router


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        user = user_for_bearer(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="财维 Caiwei API",
    version="1",
    description="政府财政业务系统运维平台接口。脚本使用 `Authorization: Bearer <令牌>`（个人中心生成，或 POST /api/auth/token）。",
    auth=[TokenAuth(), django_auth],
    urls_namespace="api",
)


def _messages(exc: ValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {
            field: [str(m) for e in errors for m in e.messages] for field, errors in exc.error_dict.items()
        }
    return {"__all__": exc.messages}


@api.exception_handler(ValidationError)
def on_validation_error(request, exc):
    errors = _messages(exc)
    detail = "；".join(f"{k}：{'，'.join(v)}" if k != "__all__" else "，".join(v) for k, v in errors.items())
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


@api.exception_handler(PermissionDenied)
def on_permission_denied(request, exc):
    return api.create_response(request, {"detail": str(exc) or "无权限"}, status=403)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    """A lookup inside an operation (an id in the body or query) that finds nothing the caller may reach."""
    return api.create_response(request, {"detail": "对象不存在或不在您的授权范围内"}, status=404)


def on_request_invalid(request, exc):
    """Ninja's own validation (types, missing fields): Chinese, naming where and which field."""
    from caiwei.apierrors import explain

    detail, errors = explain(exc.errors)
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


def _add_request_invalid_handler():
    from ninja.errors import ValidationError as RequestInvalid

    api.add_exception_handler(RequestInvalid, on_request_invalid)


_add_request_invalid_handler()

# Ninja's own HttpError texts (a body that is no JSON, a missing token, throttling) are English: answered in
# Chinese with the same status. A message that is already Chinese (raised by our code) is kept.
HTTP_ERROR_TEXTS = {
    400: "请求体无法解析：应为 JSON（Content-Type: application/json），请检查格式",
    401: "未登录或令牌无效",
    403: "无权限",
    404: "对象不存在或不在您的授权范围内",
    405: "不支持该请求方法",
    429: "请求过于频繁，请稍后再试",
}


def on_http_error(request, exc):
    import re

    message = str(exc)
    if not re.search(r"[\u4e00-\u9fff]", message):
        message = HTTP_ERROR_TEXTS.get(exc.status_code, "请求无法处理")
    return api.create_response(request, {"detail": message}, status=exc.status_code)


def _add_http_error_handler():
    from ninja.errors import HttpError

    api.add_exception_handler(HttpError, on_http_error)


_add_http_error_handler()


class TokenRequest(Schema):
    username: str
    password: str
    otp: str = ""  # 动态口令: required for an account with a bound authenticator
    name: str = "脚本"
    days: int = 90

    @field_validator("username", "password", "otp", "name")
    @classmethod
    def _storable(cls, value: str) -> str:
        # A NUL or a lone surrogate could not be hashed, stored or logged: refused here, not as a 500 later.
        if "\x00" in value:
            raise ValueError("不能含空字符（NUL）")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("含无法编码的字符") from None
        return value


class TokenOut(Schema):
    token: str
    expires_at: str


@api.post(
    "/auth/token",
    auth=None,
    response={200: TokenOut, 401: dict},
    tags=["认证"],
    summary="用账号密码（及动态口令）换取接口令牌",
)
def obtain_token(request, data: TokenRequest):
    from caiwei.accounts import twofactor

    user = authenticate(request, username=data.username, password=data.password)
    if user is None:
        return Status(401, {"detail": getattr(request, "login_failure_reason", "用户名或密码错误")})
    if twofactor.needs_enrolment(user):
        return Status(401, {"detail": "三员账号须先在网页登录并绑定动态口令，之后换取令牌时提供 otp"})
    if twofactor.has_device(user):
        if not data.otp.strip():
            return Status(401, {"detail": "该账号已开启动态口令：请在 otp 字段提供验证器应用 上的 6 位数字"})
        error = twofactor.verify(user, data.otp)
        if error is not None:
            return Status(401, {"detail": error})
    request.user = user
    days = max(1, min(data.days, 365))
    token, key = ApiToken.issue(user, data.name, timezone.now() + timedelta(days=days))
    return {"token": key, "expires_at": token.expires_at.isoformat()}


api.add_router("/accounts", accounts_router)
api.add_router("/regions", regions_router)
api.add_router("/audit", audit_router)
api.add_router("/jobs", jobs_router)
api.add_router("/calendar", calendar_router)
api.add_router("/sandbox", sandbox_router)
api.add_router("/desk", desk_router)
api.add_router("/checks/local-rules", local_rules_router)
api.add_router("/checks", checks_router)
api.add_router("/recon", recon_router)
api.add_router("/recon/statements", recon_statements_router)
api.add_router("/recon/signoffs", recon_signoffs_router)
api.add_router("/data/query", data_query_router)
api.add_router("/data/changes", data_changes_router)
api.add_router("/data/backups", data_backups_router)
api.add_router("/monitor", monitor_router)
api.add_router("/inspections", inspections_router)
