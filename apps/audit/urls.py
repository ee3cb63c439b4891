from django.urls import path

from apps.audit import views

urlpatterns = [
    path("audit/", views.AuditListView.as_view(), name="audit-list"),
    path("audit/<uuid:id>/", views.AuditDetailView.as_view(), name="audit-detail"),
]
