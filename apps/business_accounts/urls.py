from django.urls import path

from apps.business_accounts import views

urlpatterns = [
    path("business-accounts/", views.BusinessAccountListView.as_view(), name="business-account-list"),
    path("business-accounts/<uuid:id>/", views.BusinessAccountEditView.as_view(), name="business-account-edit"),
    path(
        "business-accounts/<uuid:id>/assign/", views.BusinessAccountAssignView.as_view(), name="business-account-assign"
    ),
    path(
        "business-accounts/<uuid:id>/delete/", views.BusinessAccountDeleteView.as_view(), name="business-account-delete"
    ),
]
