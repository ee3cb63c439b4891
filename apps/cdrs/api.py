"""`GET /api/v1/calls/`: the company's calls, newest first, keyset-paginated, as JSON or CSV."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.cdrs.exports import CSV_COLUMNS, calls_csv_response
from apps.cdrs.filters import CallFilter
from apps.cdrs.models import Cdr, Export
from apps.cdrs.selectors import PaidBy, call_values, calls_describe
from apps.cdrs.services import export_start
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


class ExportOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    kind = serializers.ChoiceField(Export.Kind.choices)
    status = serializers.ChoiceField(
        Export.Status.choices, help_text="queued (waiting for a worker), running, done (download it), failed."
    )
    rows_done = serializers.IntegerField(help_text="Rows written so far.")
    rows_total = serializers.IntegerField(help_text="Rows the file will hold (0 until the export has counted them).")
    percent = serializers.IntegerField()
    filters = serializers.DictField(
        source="params", child=TextField(), help_text="The filters the export was asked with."
    )
    filename = TextField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(help_text="The file and this export are deleted then.")
    error = TextField(help_text="Why it failed; empty otherwise.")
    download_url = serializers.SerializerMethodField(help_text="Where to get the file once done; null before.")

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.DONE:
            return None
        request = self.context["request"]
        return str(request.build_absolute_uri(reverse("v1:export-download", kwargs={"id": export.public_id})))


FILTER_NAMES = ("profile", "direction", "number", "date_from", "date_to", "answered")


class ExportListApi(CompanyScopedAPIView):
    """Start a background export."""

    queryset = Export.objects.all()
    read_capability = Capability.VIEW_REPORTS
    write_capability = Capability.VIEW_REPORTS  # an export reads; whoever may read the calls may export them

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        kind = serializers.ChoiceField(Export.Kind.choices, help_text="calls: the Calls list as CSV.")
        filters = serializers.DictField(
            child=TextField(allow_blank=True),
            required=False,
            help_text="The Calls list's filters: " + ", ".join(FILTER_NAMES) + " (as for GET calls/).",
        )

    @extend_schema(
        operation_id="exports_create",
        summary="Start an export",
        description=(
            "Writes a large CSV in the background (the Calls list, filtered as `GET calls/` is) and answers "
            "202 with the export at once: read it with `GET exports/{id}/` until `status` is done (its "
            "`rows_done` of `rows_total` show the progress), then fetch `download_url`. The file is kept "
            "for a day (`expires_at`). A bad filter is a 400 naming it (`filters.<name>`)."
        ),
        request=InputSerializer,
        responses={202: ExportOutputSerializer, (400, "application/json"): ERROR, (403, "application/json"): ERROR},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filters = dict(data.validated_data.get("filters", {}))
        unknown = sorted(set(filters) - set(FILTER_NAMES))
        if unknown:
            raise serializers.ValidationError({"filters": {name: ["Not a filter of the calls."] for name in unknown}})
        check = CallFilter(filters, queryset=Cdr.objects.none(), request=request)
        if not check.is_valid():
            raise serializers.ValidationError({"filters": check.errors})
        export = export_start(
            actor=self.actor,
            company=self.company,
            kind=data.validated_data["kind"],
            params=filters,
            filename="calls.csv",
        )
        export.refresh_from_db()  # in-process (make run), the task has run on commit already
        return Response(ExportOutputSerializer(export, context={"request": request}).data, status=202)


class ExportDetailApi(CompanyScopedAPIView):
    queryset = Export.objects.all()
    read_capability = Capability.VIEW_REPORTS

    @extend_schema(
        operation_id="exports_retrieve",
        summary="Get an export's progress",
        description="The export's status and progress (`rows_done` of `rows_total`), and `download_url` once done.",
        responses={200: ExportOutputSerializer, (403, "application/json"): ERROR, (404, "application/json"): ERROR},
    )
    def get(self, request: Request, id: Any) -> Response:
        return Response(ExportOutputSerializer(self.get_object(), context={"request": request}).data)


class ExportDownloadApi(CompanyScopedAPIView):
    queryset = Export.objects.all()
    read_capability = Capability.VIEW_REPORTS
    renderer_classes = [JSONRenderer, CsvRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @extend_schema(
        operation_id="exports_download",
        summary="Download an export's file",
        description="The finished export's CSV file. An export that is not done yet (or has expired) is a 404.",
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (403, "application/json"): ERROR,
            (404, "application/json"): ERROR,
        },
    )
    def get(self, request: Request, id: Any) -> Any:
        export = self.get_object()
        if export.status != Export.Status.DONE:
            raise Http404("This export is not ready.")
        return FileResponse(
            export.file.open("rb"), as_attachment=True, filename=export.filename, content_type="text/csv; charset=utf-8"
        )
