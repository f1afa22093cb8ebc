"""One check for every path: pages, the admin, the API and commands all ask ``ensure``."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from caiwei.audit.log import record_denied

from .roles import Capability


def ensure(user, capability: str, what: str = "") -> None:
    """Raise PermissionDenied (and record the attempt) unless ``user`` holds ``capability``."""
    if user is None or not user.is_authenticated or not user.can(capability):
        record_denied(what or capability, capability)
        raise PermissionDenied(f"无权限：需要“{Capability(capability).label}”权限")


def require(capability: str):
    """View decorator: log in first, then hold ``capability``."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            ensure(request.user, capability, request.path)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
