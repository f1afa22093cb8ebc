from django.urls import path

from . import manage_views, views

app_name = "desk"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.new, name="new"),
    path("calls/", views.calls, name="calls"),
    path("mail/", views.mail, name="mail"),
    path("mine/", views.mine, name="mine"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("report.docx", views.report, name="report"),
    path("report.pdf", views.report, {"fmt": "pdf"}, name="report_pdf"),
    path("calls/<int:pk>/callback/", views.call_back, name="call_back"),
    path("manage/policies/", manage_views.policies, name="manage_policies"),
    path("manage/policies/new/", manage_views.policy_edit, name="manage_policy_new"),
    path("manage/policies/<int:pk>/", manage_views.policy_edit, name="manage_policy_edit"),
    path("manage/complaints/", manage_views.complaints, name="manage_complaints"),
    path("manage/complaints/<int:pk>/", manage_views.complaint_decide, name="manage_complaint"),
    path("manage/report-settings/", manage_views.report_settings, name="manage_report_settings"),
    path("<str:number>/", views.detail, name="detail"),
    path("<str:number>/act/", views.act, name="act"),
    path("<str:number>/confirm/", views.confirm, name="confirm"),
    path("<str:number>/reply/", views.reply, name="reply"),
    path("<str:number>/files/<int:pk>/", views.attachment, name="attachment"),
]
