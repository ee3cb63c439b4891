from django.urls import include, path

from apps.billing import recharge_views, views

urlpatterns = [
    path("credit/statement/", views.StatementView.as_view(), name="credit-statement"),
    path("sip-profiles/<uuid:id>/credit/", views.ProfileCreditView.as_view(), name="sip-profile-credit"),
    path("credit/auto-recharge/", recharge_views.AutoRechargeView.as_view(), name="credit-auto-recharge"),
    path(
        "sip-profiles/<uuid:id>/auto-recharge/",
        recharge_views.ProfileAutoRechargeView.as_view(),
        name="sip-profile-auto-recharge",
    ),
    path("", include("apps.billing.purchase_urls")),
]
