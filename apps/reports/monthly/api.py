"""`GET /api/v1/reports/{summary,usage,purchases,allocations,channel-peaks,bundle-usage}/`: the
monthly reports as JSON, as the page's CSV with `?format=csv`, or as its PDF with `?format=pdf`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.bundles.models import MINUTES_PER_BUNDLE
from apps.cdrs.models import DailyCalls
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.fields import TextField
from apps.reports.monthly import bundle_usage, definitions, pdf, selectors, tables
from apps.reports.monthly.params import ReportParams


class CsvRenderer(BaseRenderer):
    """Names the CSV format for content negotiation (`?format=csv`, Accept: text/csv); the
    view writes the file itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b""


class PdfRenderer(BaseRenderer):
    """Names the PDF format for content negotiation (`?format=pdf`, Accept: application/pdf);
    the view draws the file itself (pdf.py)."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b""


def money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=4, **kwargs)


class MonthSerializer(serializers.Serializer):  # type: ignore[type-arg]
    month = TextField(source="key", help_text="YYYY-MM (UTC).")
    first_day = serializers.DateField(source="first")
    previous = TextField(source="previous.key", help_text="The month before, YYYY-MM.")


class UsageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    label = TextField(help_text="The profile's name, the destination, or the day.")  # type: ignore[assignment]
    calls = serializers.IntegerField(help_text="Every call, answered or not, refused ones included.")
    answered = serializers.IntegerField()
    minutes = serializers.DecimalField(max_digits=14, decimal_places=1, help_text="Billable minutes.")
    billable_seconds = serializers.IntegerField()
    bundle_minutes = serializers.IntegerField(help_text="US minute bundle minutes used.")
    cost = money(help_text="What the calls cost the profiles' credit.")
    refused = serializers.IntegerField(help_text="Calls the edge refused.")
    refused_at_channel_limit = serializers.IntegerField(help_text="Refused because every channel was in use.")
    unrated = serializers.IntegerField(help_text="Calls no rate covered: no money moved (see the Calls list).")


class ProfileUsageSerializer(UsageSerializer):
    profile = TextField(source="key", help_text="The SIP profile's id; empty for calls of no profile.")


class DestinationUsageSerializer(UsageSerializer):
    direction = serializers.SerializerMethodField()
    country = serializers.SerializerMethodField(help_text="ISO 3166 code of the rate; empty if none.")
    destination_class = serializers.SerializerMethodField()

    def get_direction(self, usage: selectors.Usage) -> str:
        return usage.key.split(":")[0]

    def get_country(self, usage: selectors.Usage) -> str:
        return usage.key.split(":")[1]

    def get_destination_class(self, usage: selectors.Usage) -> str:
        return usage.key.split(":")[2]


class DayUsageSerializer(UsageSerializer):
    day = serializers.DateField(source="label")


def month_parameters(*, profile: bool, by: Sequence[str] = ()) -> list[OpenApiParameter]:
    parameters = [
        OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM (UTC); this month if left out."),
        OpenApiParameter(
            "format",
            OpenApiTypes.STR,
            enum=["json", "csv", "pdf"],
            description="csv: the report's table; pdf: the report's tables with their totals, to print.",
        ),
    ]
    if profile:
        # A string, not a uuid: empty means every profile (the API's rule for an empty filter).
        parameters.append(
            OpenApiParameter(
                "profile", OpenApiTypes.STR, description="Only this SIP profile (its id); empty: every profile."
            )
        )
    if by:
        parameters.append(OpenApiParameter("by", OpenApiTypes.STR, enum=list(by), description="CSV only: which table."))
    return parameters


def responses(serializer: Any) -> dict[Any, Any]:
    return {
        (200, "application/json"): serializer,
        (200, "text/csv"): OpenApiTypes.STR,
        (200, "application/pdf"): OpenApiTypes.BINARY,
        (400, "application/json"): ERROR,
        (403, "application/json"): ERROR,
    }


ReportApiT = TypeVar("ReportApiT", bound="ReportApi")


def report_schema(**schema: Any) -> Callable[[type[ReportApiT]], type[ReportApiT]]:
    """extend_schema for a report's GET (the base's), answering its OutputSerializer."""

    def decorate(view: type[ReportApiT]) -> type[ReportApiT]:
        # On the GET itself, a copy of the base's per report: drf-spectacular takes no
        # operation_id on a view class.
        def get(self: ReportApi, request: Request) -> Any:
            return ReportApi.get(self, request)

        view.get = extend_schema(responses=responses(view.OutputSerializer), **schema)(get)  # type: ignore[method-assign]
        return view

    return decorate


class ReportApi(definitions.Definition, CompanyScopedAPIView):
    """The reports' common base: reports role, JSON, CSV or PDF, errors as JSON whichever was asked."""

    queryset = DailyCalls.objects.all()  # the base's tenancy check; each report reads its own rows
    read_capability = Capability.VIEW_REPORTS
    pagination_class = None
    renderer_classes = [JSONRenderer, CsvRenderer, PdfRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    def wants_csv(self, request: Request) -> bool:
        return request.accepted_renderer.format == "csv"

    def get(self, request: Request) -> Any:
        params = self.params(request.query_params)
        report = self.build(params)
        if self.wants_csv(request):
            return tables.csv_response(
                self.table(report, params),
                filename=tables.filename(self.report, report.month.key, self.filename_extra(params)),
            )
        if request.accepted_renderer.format == "pdf":
            return pdf.pdf_response(self.document(report, params), company_name=self.company.name)
        return Response(self.OutputSerializer(self.output(report, params)).data)

    OutputSerializer: ClassVar[type[serializers.Serializer]]  # type: ignore[type-arg]

    def output(self, report: Any, params: ReportParams) -> Any:
        """What OutputSerializer reads: the report itself unless a report says otherwise."""
        return report


class SpendDaySerializer(serializers.Serializer):  # type: ignore[type-arg]
    day = serializers.DateField()
    calls = money()
    channels = money()
    bundles = money()
    numbers = money()
    total = money()


@report_schema(
    operation_id="reports_summary",
    summary="Get a month's summary report",
    description=(
        "Where the company's credit went in a month (UTC): credit bought and refunded, allocated to and "
        "taken back from profiles, and spent on calls, channels, US minute bundles and Online Numbers, "
        "with each day's spend (`days`: day, calls, channels, bundles, numbers, total). Calls are the "
        "cost of the calls made in the month, as rated; the rest is the ledger's entries of the month. "
        "`?format=csv`: one row per total and per day and item; `?format=pdf`: the totals and each day's spend."
    ),
    parameters=month_parameters(profile=False),
)
class SummaryApi(definitions.Summary, ReportApi):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        month = MonthSerializer()
        currency = TextField()
        purchases = money(help_text="Credit bought (credited) in the month.")
        purchase_count = serializers.IntegerField()
        refunds = money()
        allocated = money(help_text="Credit allocated to profiles.")
        taken_back = money(help_text="Credit taken back from profiles.")
        calls = money(help_text="What the month's calls cost (by the day each call started).")
        call_count = serializers.IntegerField()
        channels = money()
        bundles = money(help_text="US minute bundles.")
        numbers = money(help_text="Online Numbers.")
        adjustments = money()
        spent = money(help_text="calls + channels + bundles + numbers.")
        days = SpendDaySerializer(many=True, help_text="Each day's spend, every day of the month.")


@report_schema(
    operation_id="reports_usage",
    summary="Get a month's usage report",
    description=(
        "The month's calls per profile, per destination (the country and class of the rate that covers "
        "the number dialled) and per day: calls, answered, billable minutes, US bundle minutes, cost, "
        "calls refused (at the channel limit among them) and calls no rate covered. Read from the daily "
        "figures the rating job keeps with the ratings, so it agrees with the Calls list. "
        "`?format=csv&by=profile|destination|day`: that table; `?format=pdf`: all three with their totals."
    ),
    parameters=month_parameters(profile=True, by=tables.USAGE_GROUPS),
)
class UsageApi(definitions.Usage, ReportApi):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        month = MonthSerializer()
        currency = TextField()
        profile = serializers.UUIDField(allow_null=True, help_text="The profile the report is limited to.")
        total = UsageSerializer()
        by_profile = ProfileUsageSerializer(many=True)
        by_destination = DestinationUsageSerializer(many=True)
        by_day = DayUsageSerializer(many=True, help_text="Every day of the month, in order.")

    def output(self, report: selectors.UsageReport, params: ReportParams) -> Any:
        return {
            "month": report.month,
            "currency": report.currency,
            "profile": params.profile.public_id if params.profile else None,
            "total": report.total,
            "by_profile": report.by_profile,
            "by_destination": report.by_destination,
            "by_day": report.by_day,
        }


class PurchaseLineSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    created_at = serializers.DateTimeField()
    method = TextField()
    status = TextField()
    amount = money(help_text="What was asked for.")
    amount_received = money(allow_null=True, help_text="What was credited.")
    succeeded_at = serializers.DateTimeField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)


@report_schema(
    operation_id="reports_purchases",
    summary="Get a month's purchases report",
    description=(
        "The credit purchases started in the month, oldest first (id, created_at, method, status, amount, "
        "amount_received, succeeded_at, refunded_at), with what they credited and refunded. "
        "`?format=csv`: one row per purchase; `?format=pdf`: the same, to print."
    ),
    parameters=month_parameters(profile=False),
)
class PurchasesReportApi(definitions.Purchases, ReportApi):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        month = MonthSerializer()
        currency = TextField()
        credited = money(help_text="Credited by the month's purchases (refunded ones included).")
        refunded = money()
        purchases = PurchaseLineSerializer(many=True)


class ProfileAllocationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    profile = serializers.UUIDField(source="profile.public_id")
    name = TextField(source="profile.name")
    channels = serializers.IntegerField(source="profile.channels", help_text="Channels now.")
    us_minute_bundles = serializers.IntegerField(source="profile.us_minute_bundles", help_text="Bundles now.")
    allocated = money(help_text="Credit allocated to the profile in the month.")
    taken_back = money()
    net = money()
    calls_cost = money(source="charges", help_text="What its calls of the month cost.")


@report_schema(
    operation_id="reports_allocations",
    summary="Get a month's allocations report",
    description=(
        "Per SIP profile: the credit allocated to it and taken back in the month (from the ledger), its "
        "channels and US minute bundles now, and what its calls of the month cost. `?format=csv`: one "
        "row per profile; `?format=pdf`: the same with their totals."
    ),
    parameters=month_parameters(profile=True),
)
class AllocationsApi(definitions.Allocations, ReportApi):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        month = MonthSerializer()
        currency = TextField()
        allocated = money()
        taken_back = money()
        channels = serializers.IntegerField()
        bundles = serializers.IntegerField()
        profiles = ProfileAllocationSerializer(many=True)


class PeakDaySerializer(serializers.Serializer):  # type: ignore[type-arg]
    day = serializers.DateField()
    peak = serializers.IntegerField(help_text="The most answered calls in progress at once that day (UTC).")
    channels = serializers.IntegerField(help_text="The most channels the profile had that day; 0 before it existed.")
    refused_at_channel_limit = serializers.IntegerField(source="refused_at_limit")
    at_cap = serializers.BooleanField(help_text="The peak reached the channels, or a call was refused at the limit.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # The fields above describe the schema; a month of 200 profiles is 6,000 of these, and
        # building each dict directly takes a fraction of the fields' own time.
        return {
            "day": instance.day.isoformat(),
            "peak": instance.peak,
            "channels": instance.channels,
            "refused_at_channel_limit": instance.refused_at_limit,
            "at_cap": instance.at_cap,
        }


class RecommendationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    action = serializers.ChoiceField(choices=["add", "drop", "keep"])
    change = serializers.IntegerField(help_text="Channels to add (positive) or drop (negative).")
    channels = serializers.IntegerField(help_text="The channels it advises.")
    text = TextField(help_text='In words, e.g. "Add 2 channels: calls peaked at the cap on 9 of 30 days."')
    monthly_change = money(
        allow_null=True, help_text="What it changes on the monthly bill (channel price × change); null: no price set."
    )


class ProfilePeaksSerializer(serializers.Serializer):  # type: ignore[type-arg]
    profile = serializers.UUIDField(source="profile.public_id")
    name = TextField(source="profile.name")
    channels = serializers.IntegerField(source="profile.channels", help_text="Channels now.")
    us_minute_bundles = serializers.IntegerField(source="profile.us_minute_bundles", help_text="Bundles now.")
    peak = serializers.IntegerField(help_text="The month's highest daily peak (the days judged).")
    days_at_cap = serializers.IntegerField(source="at_cap_days")
    days = serializers.IntegerField(source="counted", help_text="Days judged: up to today, since it had channels.")
    refused_at_channel_limit = serializers.IntegerField(source="refused_at_limit")
    recommendation = RecommendationSerializer()
    by_day = PeakDaySerializer(source="days", many=True, help_text="Every day of the month, in order.")


@report_schema(
    operation_id="reports_channel_peaks",
    summary="Get a month's channel peaks report",
    description=(
        "Per SIP profile and UTC day: the most answered calls in progress at once (from the calls' start and "
        "end times; a call over midnight counts on both days) against the channels the profile had that day, "
        "and the calls the edge refused at the channel limit; per profile a recommendation (add, drop or keep "
        "channels) and what it changes on the monthly bill at the channel price. "
        "`?format=csv&by=profile|day`: the recommendations, or every profile's days; `?format=pdf`: both."
    ),
    parameters=month_parameters(profile=True, by=tables.PLAN_GROUPS),
)
class ChannelPeaksApi(definitions.ChannelPeaks, ReportApi):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        month = MonthSerializer()
        currency = TextField()
        channel_price = money(allow_null=True, help_text="One channel a month; null: no price set.")
        profiles = ProfilePeaksSerializer(many=True)


class BurnDaySerializer(serializers.Serializer):  # type: ignore[type-arg]
    day = serializers.DateField()
    minutes_left = serializers.IntegerField(
        allow_null=True, help_text="At the end of the day (UTC); null: no bundle period that day, or not yet."
    )
    landline = serializers.IntegerField(help_text="Bundle minutes used that day by calls to US landlines.")
    mobile = serializers.IntegerField(help_text="… by calls to US mobiles (the same pool of minutes).")


class WhatIfSerializer(serializers.Serializer):  # type: ignore[type-arg]
    bundles = serializers.IntegerField()
    bundle_cost = money(help_text="bundles × the monthly bundle price.")
    minutes_over = serializers.DecimalField(
        max_digits=14, decimal_places=1, help_text="Last month's US minutes past bundles × 5,000."
    )
    over_cost = money(help_text="minutes_over at the rates paid.")
    total = money()
    cheapest = serializers.BooleanField()
    current = serializers.BooleanField(help_text="As many bundles as the profile holds now.")
    needs_more_channels = serializers.BooleanField(
        source="needs_channels", help_text="More bundles than the profile's channels: each bundle needs a channel."
    )


class ProfileBundlesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    profile = serializers.UUIDField(source="profile.public_id")
    name = TextField(source="profile.name")
    channels = serializers.IntegerField(source="profile.channels")
    us_minute_bundles = serializers.IntegerField(source="profile.us_minute_bundles", help_text="Bundles now.")
    period_start = serializers.DateTimeField(source="period.period_start", allow_null=True, default=None)
    period_end = serializers.DateTimeField(source="period.period_end", allow_null=True, default=None)
    minutes_included = serializers.IntegerField(help_text="Of the period in force today (or on the month's last day).")
    minutes_used = serializers.IntegerField()
    minutes_left = serializers.IntegerField()
    run_out = serializers.DateField(
        allow_null=True, help_text="When the minutes ran out, or will at the pace so far; null: not before renewal."
    )
    ran_out = serializers.BooleanField()
    forecast = TextField(help_text='In words: "Will not run out", "Runs out about 24 Mar", "Ran out on 14 Mar".')
    last_month_minutes = serializers.DecimalField(
        max_digits=14, decimal_places=1, help_text="Last month's minutes to US landlines and mobiles."
    )
    rate = serializers.DecimalField(
        max_digits=14, decimal_places=6, help_text="What one of those minutes cost at the rates paid (blended)."
    )
    what_if = WhatIfSerializer(many=True, help_text="Last month with 0, 1, … bundles; the cheapest marked.")
    by_day = BurnDaySerializer(source="days", many=True, help_text="Every day of the month, in order.")


@report_schema(
    operation_id="reports_bundle_usage",
    summary="Get a month's bundle usage report",
    description=(
        "Per SIP profile: its US minute bundle minutes left at the end of each UTC day of the month and the "
        "minutes used that day by calls to US landlines and to US mobiles (one pool), when the minutes run out "
        "at the period's pace so far (or that they will not before the period renews), and what last month's "
        "US landline and mobile minutes would have cost with 0, 1, … bundles (bundles × the bundle price plus "
        "the minutes past bundles × 5,000 at the rates paid), the cheapest marked. "
        "`?format=csv&by=profile|day`: the what-ifs, or every profile's days; `?format=pdf`: all of it."
    ),
    parameters=month_parameters(profile=True, by=tables.PLAN_GROUPS),
)
class BundleUsageApi(definitions.BundleUsage, ReportApi):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        month = MonthSerializer()
        currency = TextField()
        bundle_price = money(allow_null=True, help_text="One bundle a month; null: no price set.")
        minutes_per_bundle = serializers.IntegerField()
        profiles = ProfileBundlesSerializer(many=True)

    def output(self, report: bundle_usage.BundleReport, params: ReportParams) -> Any:
        return {
            "month": report.month,
            "currency": report.currency,
            "bundle_price": report.bundle_price,
            "minutes_per_bundle": MINUTES_PER_BUNDLE,
            "profiles": report.profiles,
        }
