from django.urls import include, path

from apps.billing import views

urlpatterns = [
    path("credit/statement/", views.StatementView.as_view(), name="credit-statement"),
    path("sip-profiles/<uuid:id>/credit/", views.ProfileCreditView.as_view(), name="sip-profile-credit"),
    path("", include("apps.billing.purchase_urls")),
]
