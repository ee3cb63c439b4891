from django.urls import path

from apps.sip_profiles import credit_views, views

urlpatterns = [
    path("sip-profiles/", views.SipProfileListView.as_view(), name="sip-profile-list"),
    path("sip-profiles/new/", views.SipProfileCreateView.as_view(), name="sip-profile-create"),
    # sip-profiles/<id>/ (sip-profile-detail) is served by apps.bundles.urls: the page's bundles form
    # posts to it, and this app imports nothing of bundles.
    path("sip-profiles/<uuid:id>/edit/", views.SipProfileEditView.as_view(), name="sip-profile-edit"),
    path(
        "sip-profiles/<uuid:id>/reset-password/",
        views.SipProfileResetPasswordView.as_view(),
        name="sip-profile-reset-password",
    ),
    path("sip-profiles/<uuid:id>/delete/", views.SipProfileDeleteView.as_view(), name="sip-profile-delete"),
    path("sip-profiles/<uuid:id>/connect/", views.ConnectPbxView.as_view(), name="sip-profile-connect"),
    path("sip-profiles/<uuid:id>/credit/", credit_views.ProfileCreditView.as_view(), name="sip-profile-credit"),
    path(
        "sip-profiles/<uuid:id>/auto-recharge/",
        credit_views.ProfileAutoRechargeView.as_view(),
        name="sip-profile-auto-recharge",
    ),
]
