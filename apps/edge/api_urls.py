from django.urls import path

from apps.edge import api

urlpatterns = [
    path("sip-profiles/<uuid:id>/status/", api.ProfileStatusApi.as_view(), name="sip-profile-status"),
]
