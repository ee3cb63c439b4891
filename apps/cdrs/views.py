"""The Calls page: the company's calls, filtered, newest first, a keyset page at a time
("Newer"/"Older"), and the filtered list as a CSV download: streamed at once, or, past
EXPORT_ASYNC_ROWS rows, written by a background export whose page shows its progress and then
its download link."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.views import View

from apps.cdrs.exports import calls_csv_response
from apps.cdrs.filters import CallFilter
from apps.cdrs.models import Cdr, Export
from apps.cdrs.selectors import PaidBy, call_values, calls_describe
from apps.cdrs.services import export_start
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.keyset import Cursor, keyset_page
from apps.sip_profiles.models import SipProfile

PAGE_SIZE = 50


def _duration(seconds: int) -> str:
    """127 → "2:07"; 3725 → "1:02:05"."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _rate(value: Decimal) -> str:
    """A rate to 6 places as people read it: 0.008000 → "0.008", 1.500000 → "1.50"."""
    whole, _, fraction = f"{value:f}".partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


class CallListView(CompanyPageMixin, View):
    read_capability = Capability.VIEW_REPORTS
    model = Cdr

    def scope_queryset(self, queryset: Any) -> Any:
        return call_values(queryset)

    def get(self, request: HttpRequest) -> HttpResponseBase:
        calls = self.get_queryset()
        filters = CallFilter(request.GET, queryset=calls, request=request)
        valid = filters.is_valid()
        cursor_error = None
        page = None
        if valid:
            calls = filters.qs
            if request.GET.get("format") == "csv":
                limit = settings.EXPORT_ASYNC_ROWS
                if calls[: limit + 1].count() <= limit:  # counts no further than the limit
                    return calls_csv_response(calls, currency=self.company.currency, filename="calls.csv")
                params = {k: str(v) for k, v in request.GET.items() if k in CallFilter.base_filters}
                export = export_start(
                    actor=self.actor, company=self.company, kind=Export.Kind.CALLS, params=params, filename="calls.csv"
                )
                return redirect("export-detail", public_id=export.public_id)
            try:
                cursor = Cursor.decode(request.GET["cursor"]) if request.GET.get("cursor") else None
            except ApplicationError as error:
                cursor_error, cursor = error.message, None
            page = keyset_page(calls, cursor=cursor, size=PAGE_SIZE, time_field="started_at")
            for row in calls_describe(page.rows, currency=self.company.currency):
                row["duration"] = _duration(row["duration_seconds"])
                row["rate"] = _rate(row["rate_per_minute"]) if row["rate_per_minute"] is not None else ""
                row["disposition_label"] = Cdr.Disposition(row["disposition"]).label
                row["refusal_label"] = Cdr.RefusalReason(row["refusal_reason"]).label if row["refusal_reason"] else ""
        query = request.GET.copy()
        query.pop("cursor", None)
        query.pop("format", None)
        context = {
            "filter": filters,
            "page": page,
            "cursor_error": cursor_error,
            "query": query.urlencode(),
            "profiles": SipProfile.objects.for_company(self.company).order_by("name").values("public_id", "name"),
            "directions": Cdr.Direction.choices,
            "marked": PaidBy.MARKED,
        }
        # A bad filter is said beside its field and no calls are listed (not the wrong ones).
        return render(request, "cdrs/calls.html", context)


class ExportDetailView(CompanyPageMixin, View):
    """A background export: its progress bar (htmx asks for the bar again every second until
    the export is finished) and then its download link. Any member who may read reports."""

    read_capability = Capability.VIEW_REPORTS
    model = Export

    def get(self, request: HttpRequest, public_id: Any) -> HttpResponseBase:
        export = self.get_object_or_404(public_id)
        context = {"export": export}
        if getattr(request, "htmx", False):
            return render(request, "cdrs/_export_progress.html", context)
        return render(request, "cdrs/export.html", context)


class ExportDownloadView(CompanyPageMixin, View):
    read_capability = Capability.VIEW_REPORTS
    model = Export

    def get(self, request: HttpRequest, public_id: Any) -> HttpResponseBase:
        export = self.get_object_or_404(public_id)
        if export.status != Export.Status.DONE:
            raise Http404("This export is not ready.")
        return FileResponse(
            export.file.open("rb"), as_attachment=True, filename=export.filename, content_type="text/csv; charset=utf-8"
        )
