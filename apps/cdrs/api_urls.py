from django.urls import path

from apps.cdrs import api

urlpatterns = [
    path("calls/", api.CallListApi.as_view(), name="call-list"),
]
