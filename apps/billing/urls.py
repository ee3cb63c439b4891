from django.urls import include, path

urlpatterns = [
    path("", include("apps.billing.purchase_urls")),
]
