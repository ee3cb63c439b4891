from django.urls import path

from apps.cdrs import views

urlpatterns = [
    path("calls/", views.CallListView.as_view(), name="call-list"),
]
