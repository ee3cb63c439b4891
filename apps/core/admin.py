from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin_readonly import ReadOnlyAdmin
from apps.core.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    """Every staff CSV import (CDRs, rate decks, number stock), to find the ones that failed:
    each import's own page (its section's "Import" link) shows its progress and bad rows."""

    list_display = ("created_at", "kind", "filename", "status", "imported_rows", "total_rows", "created_by")
    list_filter = (("created_at", admin.DateFieldListFilter), "status", "kind")
    list_select_related = ("created_by",)
    search_fields = ("filename",)
    exclude = ("content",)  # the uploaded file: megabytes, and already parsed into the errors below

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportJob]:
        return super().get_queryset(request).defer("content")
