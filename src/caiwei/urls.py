from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from caiwei.api import api
from caiwei.web import views


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (Django's admin pages): send them to ours."""
    return HttpResponsePermanentRedirect(static("caiwei/favicon.svg"))


urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/", include("caiwei.accounts.urls")),
    path("audit/", include("caiwei.audit.urls")),
    path("regions/", include("caiwei.regions.urls")),
    path("calendar/", include("caiwei.bizcalendar.urls")),
    path("jobs/", include("caiwei.jobs.urls")),
    path("sandbox/", include("caiwei.sandbox.urls")),
    path("desk/", include("caiwei.desk.urls")),
    path("checks/", include("caiwei.checks.urls")),
    path("recon/", include("caiwei.recon.urls")),
    path("recon/statements/", include("caiwei.recon.urls_statements")),
    path("data/", include("caiwei.dataops.urls")),
    path("monitor/", include("caiwei.monitor.urls")),
    path("inspections/", include("caiwei.inspections.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
