from django.urls import path

from . import views_statements as views

app_name = "recon_statements"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<int:pk>/", views.run_page, name="run"),
    path("runs/<int:pk>/download/", views.download, name="download"),
    path("runs/<int:pk>/sign/", views.sign, name="sign"),
]
