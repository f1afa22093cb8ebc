"""Pages of the console part of 数据运维 (查询台), under /data/query/."""

from django.urls import path

from . import views_console as views

urlpatterns = [
    path("", views.console_page, name="query"),
    path("run/", views.run, name="query_run"),
    path("history/", views.history, name="query_history"),
    path("grants/", views.grants, name="query_grants"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="query_grant_revoke"),
    path("classes/", views.classes_index, name="query_classes_index"),
    path("classes/<int:pk>/", views.classes, name="query_classes"),
    path("logs/<int:pk>/export/", views.export_new, name="query_export_new"),
    path("exports/", views.exports, name="query_exports"),
    path("exports/<int:pk>/decide/", views.export_decide, name="query_export_decide"),
    path("exports/<int:pk>/download/", views.export_download, name="query_export_download"),
]
