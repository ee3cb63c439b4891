"""The parts of a staff CSV import's admin pages that are the same for every import:
finding the job, rendering an admin page, the errors CSV and the template CSV."""

from __future__ import annotations

import csv
from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.core.models import ImportJob


class CsvImportAdminMixin:
    """Mixed into a ModelAdmin that adds import views. Subclasses set the job kind and the
    template file; they override import_jobs() to load more with the job."""

    import_kind: ClassVar[str]
    import_template_csv: ClassVar[str]
    import_template_filename: ClassVar[str]

    def import_jobs(self) -> QuerySet[ImportJob]:
        return ImportJob.objects.select_related("created_by")

    def _job(self, request: HttpRequest, id: Any) -> ImportJob:
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise Http404
        return get_object_or_404(self.import_jobs(), kind=self.import_kind, public_id=id)

    def _page(self, request: HttpRequest, template: str, title: str, **context: Any) -> HttpResponse:
        return render(
            request,
            template,
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "opts": self.model._meta,  # type: ignore[attr-defined]
                "title": title,
                **context,
            },
        )

    def import_errors_view(self, request: HttpRequest, id: Any) -> HttpResponse:
        job = self._job(request, id)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{job.public_id}-errors.csv"'
        writer = csv.writer(response)
        writer.writerow(["line", "error"])
        for error in job.errors:
            writer.writerow([error["line"], error["error"]])
        return response

    def import_template_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise Http404
        response = HttpResponse(self.import_template_csv, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.import_template_filename}"'
        return response
