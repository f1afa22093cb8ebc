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
            if is_api and any(path == policy.api_path(match.route) for _, path in policy.API):
                return None  # a method the operation does not have: the API answers 405 itself
            record_denied(request.path, "route.undeclared")
            if is_api:
                return JsonResponse({"detail": "该接口未声明访问权限，已拒绝"}, status=403)
            raise PermissionDenied("该页面未声明访问权限，已拒绝")
        if rule.access == policy.PUBLIC:
            return None
        user = request.user
        if is_api and not user.is_authenticated:
            user = _bearer_user(request)
            if user is not None:
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
        for obj in rule.objs:
            if obj.kwarg in view_kwargs and not obj.reachable(user, view_kwargs[obj.kwarg]):
                if is_api:
                    return JsonResponse({"detail": "对象不存在或不在您的授权范围内"}, status=404)
                raise Http404("对象不存在或不在您的授权范围内")
        return None


def _bearer_user(request):
    from caiwei.accounts.tokens import user_for_bearer

    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return user_for_bearer(key.strip())
