from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.events, name="events"),
    path("export.csv", views.export, name="export"),
    path("verify/", views.verify, name="verify"),
    path("seals.jsonl", views.seals, name="seals"),
]
