from django.urls import path

from . import custom_views, views

app_name = "checks"
urlpatterns = [
    path("", views.index, name="index"),
    path("run/", views.start, name="start"),
    path("rules/", views.rules, name="rules"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/export.xlsx", views.run_export, name="run_export"),
    path("results/<int:pk>/", views.result_detail, name="result"),
    path("results/<int:pk>/ticket/", views.result_ticket, name="result_ticket"),
    path("targets/new/", views.target_new, name="target_new"),
    path("targets/<int:target_pk>/databases/new/", views.database_new, name="database_new"),
    path("databases/<int:pk>/", views.database_edit, name="database_edit"),
    path("databases/<int:pk>/test/", views.database_test, name="database_test"),
    path("databases/<int:pk>/schedules/", views.schedule_new, name="schedule_new"),
    path("schedules/<int:pk>/", views.schedule_change, name="schedule_change"),
    path("local/", custom_views.local_rules, name="local_rules"),
    path("local/new/", custom_views.local_rule_new, name="local_rule_new"),
    path("local/validate/", custom_views.local_rule_validate, name="local_rule_validate"),
    path("local/import/", custom_views.local_rule_import, name="local_rule_import"),
    path("local/<int:pk>/", custom_views.local_rule, name="local_rule"),
    path("local/<int:pk>/action/", custom_views.local_rule_action, name="local_rule_action"),
    path("local/<int:pk>/decide/", custom_views.local_rule_decide, name="local_rule_decide"),
    path("local/<int:pk>/export.yaml", custom_views.local_rule_export, name="local_rule_export"),
]
