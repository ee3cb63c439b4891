from django.urls import path

from apps.rating import api

urlpatterns = [
    path("rates/lookup/", api.RateLookupApi.as_view(), name="rate-lookup"),
    path("sip-profiles/<uuid:id>/call-policy/", api.SipProfileCallPolicyApi.as_view(), name="sip-profile-call-policy"),
]
