from django.urls import path

from . import views

app_name = "desk"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.new, name="new"),
    path("calls/", views.calls, name="calls"),
    path("mail/", views.mail, name="mail"),
    path("mine/", views.mine, name="mine"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("report.docx", views.report, name="report"),
    path("calls/<int:pk>/callback/", views.call_back, name="call_back"),
    path("<str:number>/", views.detail, name="detail"),
    path("<str:number>/act/", views.act, name="act"),
    path("<str:number>/confirm/", views.confirm, name="confirm"),
    path("<str:number>/files/<int:pk>/", views.attachment, name="attachment"),
]
