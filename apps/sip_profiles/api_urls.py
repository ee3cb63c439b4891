from django.urls import path

from apps.sip_profiles import api, credit_api

urlpatterns = [
    path("sip-profiles/", api.SipProfileListApi.as_view(), name="sip-profile-list"),
    path("sip-profiles/<uuid:id>/", api.SipProfileDetailApi.as_view(), name="sip-profile-detail"),
    path(
        "sip-profiles/<uuid:id>/reset-password/",
        api.SipProfileResetPasswordApi.as_view(),
        name="sip-profile-reset-password",
    ),
    path("sip-profiles/<uuid:id>/credit/", credit_api.ProfileCreditApi.as_view(), name="sip-profile-credit"),
    path(
        "sip-profiles/<uuid:id>/auto-recharge/",
        credit_api.ProfileAutoRechargeApi.as_view(),
        name="sip-profile-auto-recharge",
    ),
]
