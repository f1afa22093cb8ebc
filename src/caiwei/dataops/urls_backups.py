"""Pages of the backups part of 数据运维 (/data/backups/)."""

from django.urls import path

from . import views_backups as views

urlpatterns: list = [
    path("", views.index, name="backups"),
    path("run/", views.run, name="backup_run"),
    path("<int:pk>/", views.detail, name="backup"),
    path("<int:pk>/verify/", views.verify, name="backup_verify"),
    path("<int:pk>/restore/", views.restore_start, name="restore_start"),
    path("schedules/new/", views.schedule_new, name="backup_schedule_new"),
    path("schedules/<int:pk>/", views.schedule_change, name="backup_schedule"),
    path("restores/<int:pk>/", views.restore_detail, name="restore"),
    path("restores/<int:pk>/change/", views.restore_change, name="restore_change"),
    path("restores/<int:pk>/close/", views.restore_close, name="restore_close"),
    path("drills/", views.drills, name="drills"),
    path("drills/run/", views.drill_start, name="drill_start"),
    path("drills/<int:pk>/", views.drill_detail, name="drill"),
    path("drills/<int:pk>/report/", views.drill_report, name="drill_report"),
]
