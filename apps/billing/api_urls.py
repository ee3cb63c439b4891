from django.urls import include, path

from apps.billing import api, recharge_api

urlpatterns = [
    path("credit/", api.CreditApi.as_view(), name="credit"),
    path("sip-profiles/<uuid:id>/credit/", api.ProfileCreditApi.as_view(), name="sip-profile-credit"),
    path("ledger/", api.StatementApi.as_view(), name="ledger"),
    path("credit/auto-recharge/", recharge_api.AutoRechargeApi.as_view(), name="credit-auto-recharge"),
    path(
        "sip-profiles/<uuid:id>/auto-recharge/",
        recharge_api.ProfileAutoRechargeApi.as_view(),
        name="sip-profile-auto-recharge",
    ),
    path("", include("apps.billing.purchase_api_urls")),
]
