from django.urls import path

from apps.audit import api

urlpatterns = [
    path("audit-events/", api.AuditEventListApi.as_view(), name="audit-event-list"),
    path("audit-events/<uuid:id>/", api.AuditEventDetailApi.as_view(), name="audit-event-detail"),
]
