from django.urls import path

from apps.sip_profiles import api

urlpatterns = [
    path("sip-profiles/", api.SipProfileListApi.as_view(), name="sip-profile-list"),
    path("sip-profiles/<uuid:id>/", api.SipProfileDetailApi.as_view(), name="sip-profile-detail"),
    path(
        "sip-profiles/<uuid:id>/reset-password/",
        api.SipProfileResetPasswordApi.as_view(),
        name="sip-profile-reset-password",
    ),
]
