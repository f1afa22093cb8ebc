from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render

from caiwei.accounts import login_steps, twofactor
from caiwei.accounts.roles import Capability
from caiwei.jobs.runner import worker_alive
from caiwei.regions.scoping import visible_regions

from .capabilities import tiles_for


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True
    extra_context = {"session_minutes": settings.SESSION_COOKIE_AGE // 60}

    def form_valid(self, form):
        # A right password is only the first step for an account with (or obliged to have) a second factor.
        user = form.get_user()
        step = twofactor.pending_step(user)
        if step is None:
            return super().form_valid(form)
        login_steps.start(self.request, user, self.get_success_url())
        return redirect("accounts:login_code" if step == "code" else "accounts:login_enrol")

    def form_invalid(self, form):
        reason = getattr(self.request, "login_failure_reason", None)
        if reason:
            form.errors.pop("__all__", None)
            form.add_error(None, reason)
        return super().form_invalid(form)


@login_required
def home(request):
    # Granted regions and their subtrees, as the scoping filter sees them.
    regions = visible_regions(request.user)
    # The worker warning is for those who see the jobs it runs; a bank or budget-unit user cannot act on it.
    warn_worker = request.user.can(Capability.VIEW_JOBS) and not worker_alive()
    return render(
        request,
        "web/home.html",
        {"tiles": tiles_for(request.user), "regions": regions, "warn_worker": warn_worker},
    )


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
