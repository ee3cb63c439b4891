from django.urls import include, path

from apps.billing.ledger import views
from apps.billing.purchases import views as purchase_views

urlpatterns = [
    path("credit/statement/", views.StatementView.as_view(), name="credit-statement"),
    path("credit/auto-recharge/", purchase_views.AutoRechargeView.as_view(), name="credit-auto-recharge"),
    path("", include("apps.billing.purchases.urls")),
]
