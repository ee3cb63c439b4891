from django.urls import path

from apps.business_accounts import api

urlpatterns = [
    path("business-accounts/", api.BusinessAccountListApi.as_view(), name="business-account-list"),
    path("business-accounts/<uuid:id>/", api.BusinessAccountDetailApi.as_view(), name="business-account-detail"),
]
