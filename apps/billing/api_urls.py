from django.urls import include, path

from apps.billing import api

urlpatterns = [
    path("credit/", api.CreditApi.as_view(), name="credit"),
    path("sip-profiles/<uuid:id>/credit/", api.ProfileCreditApi.as_view(), name="sip-profile-credit"),
    path("ledger/", api.StatementApi.as_view(), name="ledger"),
    path("", include("apps.billing.purchase_api_urls")),
]
