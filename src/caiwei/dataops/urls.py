"""数据运维 pages: the query console, data change requests, backups, range restores and DR drills."""

from django.urls import include, path

from . import views

app_name = "dataops"

urlpatterns = [
    path("", views.index, name="index"),
    path("query/", include("caiwei.dataops.urls_console")),
    path("changes/", include("caiwei.dataops.urls_changes")),
    path("backups/", include("caiwei.dataops.urls_backups")),
]
