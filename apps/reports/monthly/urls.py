from django.urls import path

from apps.reports.monthly import views

urlpatterns = [
    path("reports/", views.SummaryPage.as_view(), name="report-summary-page"),
    path("reports/usage/", views.UsagePage.as_view(), name="report-usage-page"),
    path("reports/purchases/", views.PurchasesPage.as_view(), name="report-purchases-page"),
    path("reports/allocations/", views.AllocationsPage.as_view(), name="report-allocations-page"),
    path("reports/channel-peaks/", views.ChannelPeaksPage.as_view(), name="report-peaks-page"),
    path("reports/bundle-usage/", views.BundleUsagePage.as_view(), name="report-bundles-page"),
]
