from django.conf import settings

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)


class ContentSecurityPolicyMiddleware:
    """No inline script or style anywhere: what the page runs comes from our own static files."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CAIWEI_CSP", DEFAULT_CSP)

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(("/api/docs", "/admin/")):
            # The OpenAPI viewer and Django's admin ship inline scripts/styles of their own.
            response.setdefault(
                "Content-Security-Policy",
                self.policy.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
                    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
                ),
            )
        else:
            response.setdefault("Content-Security-Policy", self.policy)
        return response


class NoStoreMiddleware:
    """API answers and downloads may carry finance data: no browser or proxy keeps a copy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/") or response.has_header("Content-Disposition"):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response


class PolicyMiddleware:
    """Enforces ``caiwei.web.policy`` before every view: undeclared routes are refused, capabilities and the
    objects named in the URL are checked, the same way for pages and for the API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        from django.contrib.auth.views import redirect_to_login
        from django.core.exceptions import PermissionDenied
        from django.http import Http404, JsonResponse
        from django.utils.module_loading import import_string

        from caiwei.accounts.roles import Capability
        from caiwei.audit.log import record_denied

        from . import policy

        match = request.resolver_match
        if match is None:
            return None
        is_api = match.namespace == "api" and match.url_name not in ("openapi-json", "openapi-view")
        rule = policy.policy_for(match, request.method)
        if rule is None:
            allowed = sorted(m for m, path in policy.API if is_api and path == policy.api_path(match.route))
            if allowed:
                # A method the operation does not have (HEAD, OPTIONS, PUT, DELETE ...): refused here, in Chinese,
                # so nothing undeclared ever reaches the API's view.
                method = request.method[:20]
                response = JsonResponse(
                    {"detail": f"该接口不支持 {method} 方法，可用：{'、'.join(allowed)}"}, status=405
                )
                response["Allow"] = ", ".join(allowed)
                return response
            record_denied(request.path, "route.undeclared")
            if is_api:
                return JsonResponse({"detail": "该接口未声明访问权限，已拒绝"}, status=403)
            raise PermissionDenied("该页面未声明访问权限，已拒绝")
        if rule.access == policy.PUBLIC:
            return None
        user = request.user
        if is_api and (key := _bearer_key(request)) is not None:
            # A bearer token, when given, is who is calling — also beside a session cookie of someone else. The
            # API's own auth tries the token first, so deciding here on the session would check one person and
            # run the view as another. A token that is unknown, expired, revoked, or of an account that is
            # deactivated or locked is refused outright rather than falling back to the cookie.
            from caiwei.accounts.tokens import user_for_bearer

            user = user_for_bearer(key) if key else None
            if user is None:
                return JsonResponse(
                    {"detail": "接口令牌无效、已过期或已吊销，或其账号已停用、锁定"}, status=401
                )
            request.user = user
        if user is None or not user.is_authenticated:
            if is_api:
                return JsonResponse({"detail": "请先登录或提供有效的接口令牌"}, status=401)
            return redirect_to_login(request.get_full_path())
        if rule.capabilities and not any(user.can(c) for c in rule.capabilities):
            needed = "或".join(f"“{Capability(c).label}”" for c in rule.capabilities)
            record_denied(request.path, rule.capabilities[0])
            if is_api:
                return JsonResponse({"detail": f"无权限：需要{needed}权限"}, status=403)
            raise PermissionDenied(f"无权限：需要{needed}权限")
        if rule.gate and not import_string(rule.gate)(user):
            if is_api:
                return JsonResponse({"detail": "不在您的授权范围内"}, status=403)
            raise PermissionDenied("不在您的授权范围内")
        if any(isinstance(v, str) and "\x00" in v for v in view_kwargs.values()):
            # No object is named with a NUL; file paths and lookups would crash on it (a 500) rather than answer.
            if is_api:
                return JsonResponse({"detail": "对象不存在或不在您的授权范围内"}, status=404)
            raise Http404("对象不存在或不在您的授权范围内")
        for obj in rule.objs:
            if obj.kwarg in view_kwargs and not obj.reachable(user, view_kwargs[obj.kwarg]):
                if is_api:
                    return JsonResponse({"detail": "对象不存在或不在您的授权范围内"}, status=404)
                raise Http404("对象不存在或不在您的授权范围内")
        return None


def _bearer_key(request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, split exactly as the API's ``HttpBearer`` splits it (so
    both resolve the same account); None when the request carries no bearer header."""
    parts = request.headers.get("Authorization", "").split(" ")
    if parts[0].lower() != "bearer":
        return None
    return " ".join(parts[1:])
