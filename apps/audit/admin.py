from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEvent
from apps.core.admin_lists import EstimatedCountPaginator, IndexedValuesFilter, exact_search
from apps.core.admin_readonly import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "company", "actor_label", "action", "object_repr", "ip_address")
    # A growing table (apps.core.admin_lists): a date range instead of date_hierarchy, the
    # actions from their index, an estimated count, exact searches on indexes.
    list_filter = (("created_at", admin.DateFieldListFilter), ("action", IndexedValuesFilter))
    search_fields = ("actor_label", "object_id", "company__name")
    search_help_text = "Exactly: who (their email or the key's name), the object's id, or the company's name."
    list_select_related = ("company",)  # the company column, else one query per row
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, text=("actor_label", "object_id", "company__name")), False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields]
