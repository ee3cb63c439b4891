from django.urls import path

from apps.bundles import views

urlpatterns = [
    # The profile page's URL: its bundles form posts here (GET shows the page, as sip_profiles does).
    path("sip-profiles/<uuid:id>/", views.ProfileBundlesView.as_view(), name="sip-profile-detail"),
]
