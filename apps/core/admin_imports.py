"""The parts of a staff CSV import's admin pages that are the same for every import: their
URLs, finding the job, rendering an admin page, the status page and the progress it polls,
the errors CSV and the template CSV. Each import keeps its own upload view and templates
(`<import_templates>/import_status.html` and `_import_progress.html`, which extends
admin/_import_progress.html)."""

from __future__ import annotations

import csv
from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse

from apps.core.models import ImportJob


class CsvImportAdminMixin:
    """Mixed into a ModelAdmin that adds import views. Subclasses set the job kind, the URL
    names, the templates' folder and the template file, and write import_view (the upload);
    they override import_jobs() to load more with the job and import_context() to show more."""

    import_kind: ClassVar[str]
    import_template_csv: ClassVar[str]
    import_template_filename: ClassVar[str]
    # "numbers-import": the pages are admin:numbers-import, -status, -progress, -errors, -template.
    import_url_name: ClassVar[str]
    import_templates: ClassVar[str]  # "admin/numbers"
    import_status_title: ClassVar[str] = "Import of {filename}"

    def import_view(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    def import_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        name = self.import_url_name
        return [
            path("import/", view(self.import_view), name=name),
            path("import/<uuid:id>/", view(self.import_status_view), name=f"{name}-status"),
            path("import/<uuid:id>/progress/", view(self.import_progress_view), name=f"{name}-progress"),
            path("import/<uuid:id>/errors.csv", view(self.import_errors_view), name=f"{name}-errors"),
            path("import/template.csv", view(self.import_template_view), name=f"{name}-template"),
        ]

    def import_context(self, job: ImportJob) -> dict[str, Any]:
        return {}

    def _progress_context(self, job: ImportJob) -> dict[str, Any]:
        name = self.import_url_name
        return {
            "job": job,
            "progress_url": reverse(f"admin:{name}-progress", args=[job.public_id]),
            "errors_url": reverse(f"admin:{name}-errors", args=[job.public_id]),
            **self.import_context(job),
        }

    def import_status_view(self, request: HttpRequest, id: Any) -> HttpResponse:
        job = self._job(request, id)
        title = self.import_status_title.format(filename=job.filename)
        return self._page(request, f"{self.import_templates}/import_status.html", title, **self._progress_context(job))

    def import_progress_view(self, request: HttpRequest, id: Any) -> HttpResponse:
        """What the status page polls (htmx, every second) until the import has finished."""
        job = self._job(request, id)
        return render(request, f"{self.import_templates}/_import_progress.html", self._progress_context(job))

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
