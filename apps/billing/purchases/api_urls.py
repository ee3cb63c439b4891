from django.urls import path

from apps.billing.purchases import api

urlpatterns = [
    path("credit/purchases/", api.PurchaseListApi.as_view(), name="credit-purchase-list"),
    path("credit/purchases/<uuid:id>/", api.PurchaseDetailApi.as_view(), name="credit-purchase-detail"),
    path("credit/purchases/<uuid:id>/cancel/", api.PurchaseCancelApi.as_view(), name="credit-purchase-cancel"),
    path("credit/purchases/<uuid:id>/receipt/", api.PurchaseReceiptApi.as_view(), name="credit-purchase-receipt"),
    path("payment-methods/", api.PaymentMethodListApi.as_view(), name="payment-method-list"),
    path("payment-methods/<uuid:id>/", api.PaymentMethodDetailApi.as_view(), name="payment-method-detail"),
    path("payment-methods/<uuid:id>/default/", api.PaymentMethodDefaultApi.as_view(), name="payment-method-default"),
]
