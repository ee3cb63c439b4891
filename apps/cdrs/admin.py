from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import ngettext

from apps.cdrs import imports, services
from apps.cdrs.forms import CdrImportForm
from apps.cdrs.models import Cdr, RejectedCdr
from apps.core.actor import Actor
from apps.core.admin_imports import CsvImportAdminMixin
from apps.core.admin_lists import EstimatedCountPaginator, IndexedValuesFilter, QuickRowsMixin, exact_search
from apps.core.models import ImportJob


def _skipped(job: ImportJob) -> int:
    """Rows of a finished load that were already there (an unfinished or failed one skips none)."""
    return job.total_rows - job.imported_rows if job.status == ImportJob.Status.SUCCEEDED else 0


# What the staff CDR list reads of the CDR and the rows joined to it (list_display, and the
# row's link and label); the rating is prefetched.
LIST_COLUMNS = (
    "id",
    "started_at",
    "node",
    "edge_id",
    "company__name",
    "sip_profile__name",
    "direction",
    "caller",
    "callee",
    "billable_seconds",
    "disposition",
    "refusal_reason",
)


@admin.register(Cdr)
class CdrAdmin(QuickRowsMixin, CsvImportAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Read only: CDRs come from the edge (or the CSV load below) and are never edited;
    the database refuses it too."""

    import_kind = services.IMPORT_KIND
    import_template_csv = imports.TEMPLATE
    import_template_filename = "cdrs.csv"
    import_url_name = "cdrs-import"
    import_templates = "admin/cdrs"
    import_form = CdrImportForm
    import_upload_title = "Load CDRs from CSV"
    import_verb = "load"
    import_status_title = "CDR load of {filename}"

    def import_jobs(self) -> Any:
        return ImportJob.objects.select_related("created_by").defer("content")

    change_list_template = "admin/cdrs/cdr/change_list.html"
    list_display = (
        "started_at",
        "node",
        "edge_id",
        "company",
        "sip_profile",
        "direction",
        "caller",
        "callee",
        "billable_seconds",
        "disposition",
        "refusal_reason",
        "rating__status",
        "rating__cost",
        "rating__currency",
    )
    # Millions of rows (apps.core.admin_lists): a date range instead of date_hierarchy, the
    # nodes from the (node, edge id) index, an estimated count, exact searches on indexes.
    list_filter = (
        ("started_at", admin.DateFieldListFilter),
        "direction",
        "disposition",
        "refusal_reason",
        "rating__status",
        ("node", IndexedValuesFilter),
        "auth_method",
    )
    search_fields = ("call_id", "caller", "callee", "edge_id")
    search_help_text = "An exact E.164 number (caller or callee), SIP Call-ID or edge id."
    # The rating comes in a second query by the page's ids (its primary key): joined, PostgreSQL
    # hashed the whole ratings table for a day's page.
    list_select_related = ("company", "sip_profile")
    raw_id_fields = ("company", "sip_profile")
    list_per_page = 100
    paginator = EstimatedCountPaginator
    show_full_result_count = False  # a count(*) over millions of CDRs on every page

    def get_queryset(self, request: HttpRequest) -> Any:
        # Only what a row shows (and the change page reads): a CDR's 30 columns and its
        # company's and profile's whole rows are a third of the page's time at 100 rows.
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name == "cdrs_cdr_changelist":
            queryset = queryset.only(*LIST_COLUMNS).prefetch_related("rating")
        return queryset

    def get_ordering(self, request: HttpRequest) -> Any:
        # Newest first is the id's order (its index, backwards) until a date range is chosen:
        # then the start time's, so the BRIN index finds that range and only it is sorted. By id,
        # PostgreSQL walks back from the newest CDR through every later one (a day three months
        # back: 1.7 of 2 million rows).
        if any(key.startswith("started_at__") for key in request.GET):
            return ("-started_at", "-id")
        return super().get_ordering(request)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        numbers = {}
        if search_term.strip().isdigit():
            # An edge id is unique per node: naming the nodes lets the (node, edge_id) index find it.
            nodes = IndexedValuesFilter.values(Cdr, "node")
            numbers = {"edge_id": Q() if nodes is None else Q(node__in=nodes)}
        return exact_search(queryset, search_term, text=("caller", "callee", "call_id"), numbers=numbers), False

    actions = ["rate_again"]

    @admin.action(description="Rate again the selected CDRs whose rating failed", permissions=["import"])
    def rate_again(self, request: HttpRequest, queryset: Any) -> None:
        count = services.cdrs_requeue_failed(
            actor=Actor.from_request(request), cdr_ids=list(queryset.values_list("pk", flat=True))
        )
        queued = ngettext("%(n)d CDR queued", "%(n)d CDRs queued", count) % {"n": count}
        self.message_user(request, f"{queued} to be rated again.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # through the import

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("cdrs.add_cdr")  # type: ignore[union-attr]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(
            request, {**(extra_context or {}), "can_import": self.has_import_permission(request)}
        )

    # --- CSV load ------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [*self.import_urls(), *super().get_urls()]

    def import_context(self, job: ImportJob) -> dict[str, Any]:
        return {"skipped": _skipped(job)}

    def import_create(self, *, actor: Actor, form: Any, filename: str, content: bytes) -> ImportJob:
        return services.cdr_import_create(actor=actor, filename=filename, content=content)

    def import_upload_context(self) -> dict[str, Any]:
        return {"columns": imports.COLUMNS, "dispositions": Cdr.Disposition.values}

    def import_status_lead(self, job: ImportJob) -> str:
        return format_html("CDR file “{}”, uploaded", job.filename)


@admin.register(RejectedCdr)
class RejectedCdrAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records of the edge the import could not take as CDRs, with why: kept for staff to
    look into (a profile deleted by hand on a node, a malformed number); read only."""

    list_display = ("created_at", "node", "edge_id", "reason")
    # A growing table (apps.core.admin_lists): a date range instead of date_hierarchy, the nodes
    # from the (node, edge id) index, an estimated count, the edge id found by node.
    list_filter = (("created_at", admin.DateFieldListFilter), ("node", IndexedValuesFilter))
    search_fields = ("edge_id",)
    search_help_text = "Exactly: the record's edge id."
    readonly_fields = ("node", "edge_id", "reason", "record", "created_at")
    list_per_page = 100
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        if not search_term.strip().isdigit():
            return queryset.none(), False  # an edge id is a number: nothing else matches
        nodes = IndexedValuesFilter.values(RejectedCdr, "node")
        numbers = {"edge_id": Q() if nodes is None else Q(node__in=nodes)}
        return exact_search(queryset, search_term, numbers=numbers), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
