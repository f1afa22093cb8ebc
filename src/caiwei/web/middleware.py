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
