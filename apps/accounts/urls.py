from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("api-keys/", views.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<uuid:id>/revoke/", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]
