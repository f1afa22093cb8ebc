from django.urls import path

from . import views, views_sources

app_name = "recon"
urlpatterns = [
    path("", views.index, name="index"),
    path("run/", views.start, name="start"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("breaks/", views.breaks, name="breaks"),
    path("breaks/<int:pk>/", views.break_detail, name="break"),
    path("breaks/<int:pk>/action/", views.break_action, name="break_action"),
    path("breaks/<int:pk>/comment/", views.break_comment, name="break_comment"),
    path("formats/", views.format_list, name="formats"),
    path("formats/new/", views.format_new, name="format_new"),
    path("formats/<int:pk>/", views.format_edit, name="format"),
    path("sources/", views_sources.source_list, name="sources"),
    path("sources/new/", views_sources.source_new, name="source_new"),
    path("sources/<int:pk>/", views_sources.source_edit, name="source"),
    path("sources/<int:pk>/pull/", views_sources.source_pull, name="source_pull"),
]
