from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("me/", views.profile, name="profile"),
    path("me/tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("grants/", views.grants, name="grants"),
    path("grants/<int:pk>/", views.grant_edit, name="grant_edit"),
]
