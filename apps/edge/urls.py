from django.urls import path

from apps.edge import views

urlpatterns = [
    # The profile page's live status card polls this (htmx); it answers the card's content.
    path("sip-profiles/<uuid:id>/status/", views.ProfileLiveStatusView.as_view(), name="sip-profile-status"),
]
