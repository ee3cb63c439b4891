from django.urls import path

from apps.billing.purchases import views

urlpatterns = [
    path("credit/", views.CreditView.as_view(), name="credit"),
    path("credit/purchases/<uuid:id>/", views.PurchaseDetailView.as_view(), name="credit-purchase"),
    path("credit/purchases/<uuid:id>/cancel/", views.PurchaseCancelView.as_view(), name="credit-cancel"),
    path("credit/purchases/<uuid:id>/pay/", views.PurchasePayView.as_view(), name="credit-pay"),
    path("credit/purchases/<uuid:id>/receipt.pdf", views.PurchaseReceiptView.as_view(), name="credit-receipt"),
    path("credit/cards/<uuid:id>/default/", views.CardDefaultView.as_view(), name="credit-card-default"),
    path("credit/cards/<uuid:id>/remove/", views.CardRemoveView.as_view(), name="credit-card-remove"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
]
