from django.urls import path

from . import views

app_name = "bizcalendar"
urlpatterns = [
    path("", views.index, name="index"),
    path("calculate/", views.calculate, name="calculate"),
    path("notice/", views.import_notice, name="notice"),
]
