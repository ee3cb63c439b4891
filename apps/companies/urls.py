from django.urls import path

from apps.companies import views

urlpatterns = [
    path("company/", views.CompanySettingsView.as_view(), name="company-settings"),
    path("company/members/", views.MemberListView.as_view(), name="member-list"),
    path("company/members/<uuid:id>/role/", views.MemberRoleView.as_view(), name="member-role"),
    path("company/members/<uuid:id>/remove/", views.MemberRemoveView.as_view(), name="member-remove"),
    path("company/leave/", views.LeaveCompanyView.as_view(), name="company-leave"),
    path("company/invitations/<uuid:id>/revoke/", views.InvitationRevokeView.as_view(), name="invitation-revoke"),
    path("company/verification/", views.VerificationView.as_view(), name="verification"),
    path("notices/<uuid:id>/dismiss/", views.NoticeDismissView.as_view(), name="notice-dismiss"),
    path("companies/new/", views.CompanyCreateView.as_view(), name="company-create"),
    path("companies/switch/", views.company_switch, name="company-switch"),
    path("invitations/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path(
        "staff/verification-documents/<uuid:id>/",
        views.verification_document_download,
        name="verification-document",
    ),
]
