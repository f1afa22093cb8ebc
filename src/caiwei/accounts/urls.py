from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("me/", views.profile, name="profile"),
    path("me/tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("grants/", views.grants, name="grants"),
    path("grants/<int:pk>/", views.grant_edit, name="grant_edit"),
    path("me/otp/", views.otp, name="otp"),
    path("login/code/", views.login_code, name="login_code"),
    path("login/enrol/", views.login_enrol, name="login_enrol"),
    path("requests/", views.change_requests, name="requests"),
    path("requests/<int:pk>/decide/", views.change_request_decide, name="request_decide"),
]
