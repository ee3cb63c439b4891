"""`GET /api/v1/calls/`: the company's calls, newest first, keyset-paginated, as JSON or CSV."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.cdrs.exports import CSV_COLUMNS, calls_csv_response
from apps.cdrs.filters import CallFilter
from apps.cdrs.models import Cdr
from apps.cdrs.selectors import PaidBy, call_values, calls_describe
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.fields import TextField, UtcDateTimeField, decimal_text, iso_datetime
from apps.core.keyset import keyset_api_page, keyset_page_serializer, keyset_parameters


class CsvRenderer(BaseRenderer):
    """Only names the CSV format for content negotiation (`?format=csv`, Accept: text/csv):
    the view streams the file itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b""


class CallOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    profile = serializers.UUIDField(source="profile_id", allow_null=True, help_text="The SIP profile's id.")
    profile_name = TextField(allow_null=True)
    direction = serializers.ChoiceField(Cdr.Direction.choices)
    caller = TextField(help_text="E.164.")
    callee = TextField(help_text="E.164; a business account's name (on-net); what was dialled (a refused call).")
    destination = TextField(
        allow_null=True, help_text="The rate deck's name for the destination; null where no rate applied."
    )
    started_at = UtcDateTimeField()
    answered_at = UtcDateTimeField(allow_null=True)
    duration_seconds = serializers.IntegerField()
    billable_seconds = serializers.IntegerField()
    disposition = serializers.ChoiceField(Cdr.Disposition.choices)
    refusal_reason = TextField(help_text="Why the edge refused the call (disposition refused), else empty.")
    paid_by = serializers.ChoiceField(
        list(PaidBy.CHOICES),
        help_text="credit (at rate_per_minute), bundle (US minute bundle), bundle_and_credit, free, refused, "
        "blocked (never priced), not_rated (no rate covered the call: no money moved), pending (not rated yet).",
    )
    rate_per_minute = serializers.DecimalField(
        max_digits=12, decimal_places=6, allow_null=True, help_text="The rate the credit was charged at."
    )
    bundle_minutes = serializers.IntegerField(help_text="Bundle minutes the call used.")
    cost = serializers.DecimalField(
        max_digits=14,
        decimal_places=4,
        allow_null=True,
        help_text="What the profile's credit paid; null: not rated yet.",
    )
    currency = TextField()
    note = TextField(help_text="Rating's note: e.g. which rate was missing.")


def call_output(row: dict[str, Any]) -> dict[str, Any]:
    """CallOutputSerializer's output, from a row of call_values described by calls_describe."""
    return {
        "id": str(row["public_id"]),
        "profile": None if row["profile_id"] is None else str(row["profile_id"]),
        "profile_name": row["profile_name"],
        "direction": row["direction"],
        "caller": row["caller"],
        "callee": row["callee"],
        "destination": row["destination"],
        "started_at": iso_datetime(row["started_at"]),
        "answered_at": iso_datetime(row["answered_at"]),
        "duration_seconds": row["duration_seconds"],
        "billable_seconds": row["billable_seconds"],
        "disposition": row["disposition"],
        "refusal_reason": row["refusal_reason"],
        "paid_by": row["paid_by"],
        "rate_per_minute": decimal_text(row["rate_per_minute"]),
        "bundle_minutes": row["bundle_minutes"],
        "cost": decimal_text(row["cost"]),
        "currency": row["currency"],
        "note": row["note"],
    }


class CallListApi(CompanyScopedAPIView):
    """The company's calls with how each was paid and its cost."""

    queryset = Cdr.objects.all()
    read_capability = Capability.VIEW_REPORTS
    filterset_class = CallFilter
    pagination_class = None
    renderer_classes = [JSONRenderer, CsvRenderer]

    def scope_queryset(self, queryset: Any) -> Any:
        return call_values(queryset)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # Errors are the API's JSON body, whichever format the list was asked in.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @extend_schema(
        operation_id="calls_list",
        summary="List calls",
        description=(
            "Every call of the company (refused ones too), newest first by (started_at, id), with its "
            "destination, how it was paid and its cost; calls no rate covers are listed with "
            "paid_by=not_rated. Keyset-paginated: follow `next` (older) and `previous` (newer); a deep "
            "page costs what the first does and no page counts the rows. `?format=csv` (or Accept: "
            "text/csv) streams every call that matches the filters as one CSV file, not paginated, with "
            "the columns " + ", ".join(CSV_COLUMNS) + "."
        ),
        filters=True,
        parameters=[
            *keyset_parameters(),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: the whole list."),
        ],
        responses={
            (200, "application/json"): keyset_page_serializer(
                "CallPage", CallOutputSerializer(many=True), older="older calls", newer="newer calls"
            ),
            (200, "text/csv"): OpenApiTypes.STR,
            (400, "application/json"): ERROR,
            (403, "application/json"): ERROR,
        },
    )
    def get(self, request: Request) -> Any:
        calls = self.filter_queryset(self.get_queryset())
        currency = self.company.currency
        if request.accepted_renderer.format == "csv":
            return calls_csv_response(calls, currency=currency, filename="calls.csv")
        page, links = keyset_api_page(request, calls, time_field="started_at")
        results = [call_output(row) for row in calls_describe(page.rows, currency=currency)]
        return Response({**links, "results": results})
