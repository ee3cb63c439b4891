from django.urls import include, path

from apps.billing import recharge_views, views

urlpatterns = [
    path("credit/statement/", views.StatementView.as_view(), name="credit-statement"),
    path("credit/auto-recharge/", recharge_views.AutoRechargeView.as_view(), name="credit-auto-recharge"),
    path("", include("apps.billing.purchase_urls")),
]
