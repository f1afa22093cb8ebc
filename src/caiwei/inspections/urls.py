from django.urls import path

from . import views

app_name = "inspections"
urlpatterns = [
    path("", views.calendar, name="calendar"),
    path("tick/", views.tick, name="tick"),
    path("plans/", views.plan_list, name="plans"),
    path("plans/new/", views.plan_new, name="plan_new"),
    path("plans/<int:pk>/", views.plan_edit, name="plan"),
    path("plans/<int:pk>/item/", views.plan_item, name="plan_item"),
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/record/", views.run_record, name="run_record"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run_rerun"),
    path("runs/<int:pk>/finish/", views.run_finish, name="run_finish"),
    path("runs/<int:pk>/ticket/", views.run_ticket, name="run_ticket"),
    path("runs/<int:pk>/report/", views.run_report, name="run_report"),
    path("runs/<int:pk>/shots/<int:shot>/", views.run_shot, name="run_shot"),
]
