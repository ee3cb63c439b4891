from django.urls import path

from apps.reports import views

urlpatterns = [
    path("status/", views.StatusView.as_view(), name="status"),
]
