from django.urls import path

from apps.reports.monthly import api

urlpatterns = [
    path("reports/summary/", api.SummaryApi.as_view(), name="report-summary"),
    path("reports/usage/", api.UsageApi.as_view(), name="report-usage"),
    path("reports/purchases/", api.PurchasesReportApi.as_view(), name="report-purchases"),
    path("reports/allocations/", api.AllocationsApi.as_view(), name="report-allocations"),
    path("reports/channel-peaks/", api.ChannelPeaksApi.as_view(), name="report-peaks"),
    path("reports/bundle-usage/", api.BundleUsageApi.as_view(), name="report-bundles"),
]
