from django.conf import settings

from .context import Actor, acting, new_request_id


def client_ip(request) -> str | None:
    if getattr(settings, "CAIWEI_TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Gives every request an id and binds the acting user, address and id for the audit log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = new_request_id()
        path = request.path
        source = "api" if path.startswith("/api/") else "admin" if path.startswith("/admin/") else "web"
        actor = Actor(
            ip=client_ip(request), request_id=request.request_id, source=source, username="anonymous"
        )
        with acting(actor, request):
            response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response
