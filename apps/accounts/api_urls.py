from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("api-keys/", api.ApiKeyListApi.as_view(), name="api-key-list"),
    path("api-keys/<uuid:id>/", api.ApiKeyDetailApi.as_view(), name="api-key-detail"),
]
