from django.urls import include, path

from apps.billing.ledger import api
from apps.billing.recharge import api as recharge_api

urlpatterns = [
    path("credit/", api.CreditApi.as_view(), name="credit"),
    path("ledger/", api.StatementApi.as_view(), name="ledger"),
    path("credit/auto-recharge/", recharge_api.AutoRechargeApi.as_view(), name="credit-auto-recharge"),
    path("", include("apps.billing.purchases.api_urls")),
]
