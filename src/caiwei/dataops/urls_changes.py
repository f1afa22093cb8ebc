"""Pages of the changes part of 数据运维 (under /data/changes/, names prefixed change)."""

from django.urls import path

from . import views_changes as views

urlpatterns: list = [
    path("", views.change_list, name="changes"),
    path("new/", views.change_new, name="change_new"),
    path("review/", views.change_review, name="change_review"),
    path("<int:pk>/", views.change_detail, name="change"),
    path("<int:pk>/edit/", views.change_edit, name="change_edit"),
    path("<int:pk>/submit/", views.change_submit, name="change_submit"),
    path("<int:pk>/decide/", views.change_decide, name="change_decide"),
    path("<int:pk>/execute/", views.change_execute, name="change_execute"),
    path("<int:pk>/rollback/", views.change_rollback, name="change_rollback"),
]
