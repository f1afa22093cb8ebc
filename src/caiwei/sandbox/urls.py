from django.urls import path

from . import views

app_name = "sandbox"
urlpatterns = [
    path("", views.index, name="index"),
    path("generate/", views.generate, name="generate"),
    path("manifest.json", views.manifest, name="manifest"),
    path("files/<path:name>", views.bank_file, name="bank_file"),
]
