from django.urls import path

from apps.cdrs import views

urlpatterns = [
    path("calls/", views.CallListView.as_view(), name="call-list"),
    path("exports/<uuid:public_id>/", views.ExportDetailView.as_view(), name="export-detail"),
    path("exports/<uuid:public_id>/download/", views.ExportDownloadView.as_view(), name="export-download"),
]
