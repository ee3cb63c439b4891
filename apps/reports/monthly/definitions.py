"""What each report reads, what its CSV holds and what its PDF draws, written once for its page
(apps.reports.monthly.views) and its API (apps.reports.monthly.api): each class here is mixed
into both, before their base, which reads the query, answers CSV or renders the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from apps.companies.models import Company
from apps.reports.monthly import bundle_usage, channel_peaks, selectors, tables
from apps.reports.monthly.params import ReportParams, report_params


class Definition:
    report: ClassVar[str]
    groups: ClassVar[tuple[str, ...]] = tables.USAGE_GROUPS  # the CSV's tables (`by`), default first
    company: Company  # the request's company, resolved by the view's company-scoped base

    def build(self, params: ReportParams) -> Any:
        raise NotImplementedError

    def table(self, report: Any, params: ReportParams) -> tables.Table:
        raise NotImplementedError

    def filename_extra(self, params: ReportParams) -> list[str]:
        """What the CSV's file name says besides the report and the month."""
        return []

    def document(self, report: Any, params: ReportParams) -> tables.Document:
        """What the report's PDF draws (apps.reports.monthly.pdf)."""
        raise NotImplementedError

    @staticmethod
    def profile_names(params: ReportParams) -> dict[str, str]:
        """The profile a report is limited to, for its document's subtitle and file name."""
        if params.profile is None:
            return {}
        return {"profile_name": params.profile.name, "profile_id": str(params.profile.public_id)}

    def params(self, query: Mapping[str, str]) -> ReportParams:
        return report_params(query, company=self.company, groups=self.groups)


class Summary(Definition):
    report = "summary"

    def build(self, params: ReportParams) -> selectors.SummaryReport:
        return selectors.summary_report(company=self.company, month=params.month)

    def table(self, report: selectors.SummaryReport, params: ReportParams) -> tables.Table:
        return tables.summary_table(report)

    def document(self, report: selectors.SummaryReport, params: ReportParams) -> tables.Document:
        return tables.summary_document(report)


class Usage(Definition):
    report = "usage"

    def build(self, params: ReportParams) -> selectors.UsageReport:
        return selectors.usage_report(company=self.company, month=params.month, profile=params.profile)

    def table(self, report: selectors.UsageReport, params: ReportParams) -> tables.Table:
        return tables.usage_table(report, by=params.by)

    def document(self, report: selectors.UsageReport, params: ReportParams) -> tables.Document:
        return tables.usage_document(report, **self.profile_names(params))

    def filename_extra(self, params: ReportParams) -> list[str]:
        return [params.by] + ([str(params.profile.public_id)] if params.profile else [])


class Purchases(Definition):
    report = "purchases"

    def build(self, params: ReportParams) -> selectors.PurchasesReport:
        return selectors.purchases_report(company=self.company, month=params.month)

    def table(self, report: selectors.PurchasesReport, params: ReportParams) -> tables.Table:
        return tables.purchases_table(report)

    def document(self, report: selectors.PurchasesReport, params: ReportParams) -> tables.Document:
        return tables.purchases_document(report)


class Allocations(Definition):
    report = "allocations"

    def build(self, params: ReportParams) -> selectors.AllocationsReport:
        return selectors.allocations_report(company=self.company, month=params.month, profile=params.profile)

    def table(self, report: selectors.AllocationsReport, params: ReportParams) -> tables.Table:
        return tables.allocations_table(report)

    def document(self, report: selectors.AllocationsReport, params: ReportParams) -> tables.Document:
        return tables.allocations_document(report, **self.profile_names(params))


class ChannelPeaks(Definition):
    report = "peaks"
    groups = tables.PLAN_GROUPS

    def build(self, params: ReportParams) -> channel_peaks.PeaksReport:
        return channel_peaks.peaks_report(company=self.company, month=params.month, profile=params.profile)

    def table(self, report: channel_peaks.PeaksReport, params: ReportParams) -> tables.Table:
        return tables.peaks_table(report, by=params.by)

    def document(self, report: channel_peaks.PeaksReport, params: ReportParams) -> tables.Document:
        return tables.peaks_document(report, **self.profile_names(params))

    def filename_extra(self, params: ReportParams) -> list[str]:
        return [params.by] + ([str(params.profile.public_id)] if params.profile else [])


class BundleUsage(Definition):
    report = "bundles"
    groups = tables.PLAN_GROUPS

    def build(self, params: ReportParams) -> bundle_usage.BundleReport:
        return bundle_usage.bundle_report(company=self.company, month=params.month, profile=params.profile)

    def table(self, report: bundle_usage.BundleReport, params: ReportParams) -> tables.Table:
        return tables.bundles_table(report, by=params.by)

    def document(self, report: bundle_usage.BundleReport, params: ReportParams) -> tables.Document:
        return tables.bundles_document(report, **self.profile_names(params))

    def filename_extra(self, params: ReportParams) -> list[str]:
        return [params.by] + ([str(params.profile.public_id)] if params.profile else [])
