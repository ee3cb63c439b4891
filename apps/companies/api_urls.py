from django.urls import path

from apps.companies import api

urlpatterns = [
    path("company/", api.CompanyApi.as_view(), name="company"),
    path("members/", api.MemberListApi.as_view(), name="member-list"),
    path("members/<uuid:id>/", api.MemberDetailApi.as_view(), name="member-detail"),
    path("invitations/", api.InvitationListApi.as_view(), name="invitation-list"),
    path("invitations/<uuid:id>/", api.InvitationDetailApi.as_view(), name="invitation-detail"),
    path("verification/", api.VerificationApi.as_view(), name="verification"),
]
