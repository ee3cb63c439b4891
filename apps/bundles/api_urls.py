from django.urls import path

from apps.bundles import api

urlpatterns = [
    path("sip-profiles/<uuid:id>/bundles/", api.ProfileBundlesApi.as_view(), name="sip-profile-bundles"),
]
