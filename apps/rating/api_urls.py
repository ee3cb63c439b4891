from django.urls import path

from apps.rating import api

urlpatterns = [
    path("rates/lookup/", api.RateLookupApi.as_view(), name="rate-lookup"),
]
