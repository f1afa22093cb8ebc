from django.urls import path

from . import views

app_name = "monitor"
urlpatterns = [
    path("", views.board, name="board"),
    path("wall/", views.wall, name="wall"),
    path("alerts/", views.alert_list, name="alerts"),
    path("items/", views.item_list, name="items"),
    path("items/new/", views.item_new, name="item_new"),
    path("items/<int:pk>/", views.item_detail, name="item"),
    path("items/<int:pk>/edit/", views.item_edit, name="item_edit"),
    path("items/<int:pk>/run/", views.item_run, name="item_run"),
    path("items/<int:pk>/token/", views.item_token, name="item_token"),
    path("items/<int:pk>/delete/", views.item_delete, name="item_delete"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/new/", views.rule_new, name="rule_new"),
    path("rules/<int:pk>/", views.rule_edit, name="rule"),
    path("windows/", views.window_list, name="windows"),
    path("windows/new/", views.window_new, name="window_new"),
    path("windows/<int:pk>/", views.window_edit, name="window"),
    path("windows/<int:pk>/delete/", views.window_delete, name="window_delete"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/new/", views.webhook_new, name="webhook_new"),
    path("webhooks/<int:pk>/", views.webhook_edit, name="webhook"),
    # The dead man's switch of a finance job: public, and the same answer for any token.
    path("hb/<str:token>", views.heartbeat, name="heartbeat"),
]
