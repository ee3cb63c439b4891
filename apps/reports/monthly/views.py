"""The Reports pages: one month at a time (previous and next), a profile filter where it applies,
a chart drawn in the browser by Chart.js (static/vendor/chartjs) from the figures passed with
json_script, the same figures as a table, the table as CSV (`?format=csv`) and the report as a
PDF (`?format=pdf`, drawn from its definition's document)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.reports.monthly import bundle_usage, channel_peaks, definitions, pdf, selectors, tables
from apps.reports.monthly.params import ReportParams, earliest_month
from apps.sip_profiles.models import SipProfile

REPORTS = [
    ("summary", "Summary"),
    ("usage", "Usage"),
    ("purchases", "Purchases"),
    ("allocations", "Allocations"),
    ("peaks", "Channel peaks"),
    ("bundles", "Bundle usage"),
]


class ReportPage(definitions.Definition, CompanyPageMixin, View):
    read_capability = Capability.VIEW_REPORTS
    model = SipProfile  # the profile filter's choices
    has_profile_filter: ClassVar[bool] = False

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            params = self.params(request.GET)
        except ApplicationError as error:
            # A bad month or profile in the address: this month's whole report, and why.
            params = self.params({})
            errors = [error.message]
        else:
            errors = []
        report = self.build(params)
        if request.GET.get("format") == "csv":
            return tables.csv_response(
                self.table(report, params),
                filename=tables.filename(self.report, params.month.key, self.filename_extra(params)),
            )
        if request.GET.get("format") == "pdf":
            return pdf.pdf_response(self.document(report, params), company_name=self.company.name)
        context = self.context(report, params)
        this_month = selectors.Month.parse(None, today=timezone.now().date())
        earliest = earliest_month()
        base = reverse(f"report-{self.report}-page")
        profile_query = f"&profile={params.profile.public_id}" if params.profile else ""
        context.update(
            {
                "report": self.report,
                "reports": [(key, label, reverse(f"report-{key}-page")) for key, label in REPORTS],
                "month": params.month,
                "errors": errors,
                "profile": params.profile,
                "profiles": (
                    self.get_queryset()
                    .filter(deleted_at__isnull=True)
                    .order_by("name")
                    .values_list("public_id", "name")
                    if self.has_profile_filter
                    else []
                ),
                # Not before the call retention period (CALL_RETENTION_MONTHS).
                "previous_url": (
                    f"{base}?month={params.month.previous.key}{profile_query}"
                    if params.month.first > earliest.first
                    else None
                ),
                "earliest_month": earliest,
                "retention_months": settings.CALL_RETENTION_MONTHS,
                "next_url": (
                    f"{base}?month={params.month.next.key}{profile_query}"
                    if params.month.first < this_month.first
                    else None
                ),
                "csv_url": f"{base}?month={params.month.key}{profile_query}&format=csv",
                "pdf_url": f"{base}?month={params.month.key}{profile_query}&format=pdf",
                "currency": self.company.currency,
            }
        )
        return render(request, f"reports/{self.report}.html", context)

    def context(self, report: Any, params: ReportParams) -> dict[str, Any]:
        """What the page shows besides the month picker and the filters."""
        raise NotImplementedError


class SummaryPage(definitions.Summary, ReportPage):
    def context(self, report: selectors.SummaryReport, params: ReportParams) -> dict[str, Any]:
        chart = {
            "type": "bar",
            "stacked": True,
            "labels": [d.day.strftime("%d") for d in report.days],
            "series": [
                {"label": "Calls", "data": [float(d.calls) for d in report.days]},
                {"label": "Channels", "data": [float(d.channels) for d in report.days]},
                {"label": "Bundles", "data": [float(d.bundles) for d in report.days]},
                {"label": "Numbers", "data": [float(d.numbers) for d in report.days]},
            ],
            "unit": self.company.currency,
        }
        return {"summary": report, "lines": report.lines(), "chart": chart}


class UsagePage(definitions.Usage, ReportPage):
    has_profile_filter = True

    def context(self, report: selectors.UsageReport, params: ReportParams) -> dict[str, Any]:
        chart = {
            "type": "bar",
            "stacked": True,
            "labels": [u.label[8:] for u in report.by_day],
            "series": [
                {"label": "Minutes at the rate", "data": [float(u.minutes) - u.bundle_minutes for u in report.by_day]},
                {"label": "Bundle minutes", "data": [u.bundle_minutes for u in report.by_day]},
            ],
            "unit": "minutes",
        }
        return {"usage": report, "chart": chart}


class PurchasesPage(definitions.Purchases, ReportPage):
    def context(self, report: selectors.PurchasesReport, params: ReportParams) -> dict[str, Any]:
        return {"purchases": report}


class AllocationsPage(definitions.Allocations, ReportPage):
    has_profile_filter = True

    def context(self, report: selectors.AllocationsReport, params: ReportParams) -> dict[str, Any]:
        chart = {
            "type": "bar",
            "stacked": False,
            "horizontal": True,
            "labels": [a.profile.name for a in report.profiles],
            "series": [
                {"label": "Allocated", "data": [float(a.allocated) for a in report.profiles]},
                {"label": "Calls", "data": [float(a.charges) for a in report.profiles]},
            ],
            "unit": self.company.currency,
        }
        return {"allocations": report, "chart": chart}


class ChannelPeaksPage(definitions.ChannelPeaks, ReportPage):
    has_profile_filter = True

    def context(self, report: channel_peaks.PeaksReport, params: ReportParams) -> dict[str, Any]:
        shown = report.chart_profile
        days = shown.days if shown else []
        chart = {
            "type": "bar",
            "stacked": False,
            "labels": [d.day.strftime("%d") for d in days],
            "series": [
                {"label": "Peak calls at once", "data": [d.peak for d in days]},
                {"label": "Channels", "data": [d.channels for d in days], "type": "line", "step": True},
            ],
            "unit": "calls",
        }
        return {"peaks": report, "shown": shown, "chart": chart}


class BundleUsagePage(definitions.BundleUsage, ReportPage):
    has_profile_filter = True

    def context(self, report: bundle_usage.BundleReport, params: ReportParams) -> dict[str, Any]:
        days = report.days
        chart = {
            "type": "bar",
            "stacked": True,
            "labels": [d.day.strftime("%d") for d in days],
            "series": [
                {"label": "Minutes left", "data": [d.minutes_left for d in days], "type": "line"},
                {"label": "Used: US landlines", "data": [d.landline for d in days], "axis": "right"},
                {"label": "Used: US mobiles", "data": [d.mobile for d in days], "axis": "right"},
            ],
            "unit": "minutes",
        }
        return {"bundles": report, "bundle_days": days, "chart": chart}
