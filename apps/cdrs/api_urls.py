from django.urls import path

from apps.cdrs import api

urlpatterns = [
    path("calls/", api.CallListApi.as_view(), name="call-list"),
    path("exports/", api.ExportListApi.as_view(), name="export-list"),
    path("exports/<uuid:id>/", api.ExportDetailApi.as_view(), name="export-detail"),
    path("exports/<uuid:id>/download/", api.ExportDownloadApi.as_view(), name="export-download"),
]
