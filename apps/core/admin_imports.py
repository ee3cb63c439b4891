"""The admin pages of every staff CSV import: their URLs, the upload (one view, one
template, admin/import_upload.html), the status page and the progress it polls, the errors
CSV and the template CSV. Each import supplies its form, the service that queues the job,
and the templates that say what differs: `<import_templates>/_import_help.html` (what the
file holds, on the upload page) and `_import_progress.html` (which extends
admin/_import_progress.html, on the one status page admin/import_status.html)."""

from __future__ import annotations

import csv
from typing import Any, ClassVar

from django import forms
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse

from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.models import ImportJob

RECENT_IMPORTS = 10


class CsvImportAdminMixin:
    """Mixed into a ModelAdmin that adds import views. Subclasses set the job kind, the URL
    names, the templates' folder, the template file, the upload form and title, and write
    import_create (queue the job with the service); they override import_jobs() to load more
    with the job, import_context() to show more on its status page, import_upload_context()
    and import_recent_values() to show more on the upload page."""

    import_kind: ClassVar[str]
    import_template_csv: ClassVar[str]
    import_template_filename: ClassVar[str]
    # "numbers-import": the pages are admin:numbers-import, -status, -progress, -errors, -template.
    import_url_name: ClassVar[str]
    import_templates: ClassVar[str]  # "admin/numbers"
    import_status_title: ClassVar[str] = "Import of {filename}"
    import_form: ClassVar[type[forms.Form]]  # with a `file` field
    import_upload_title: ClassVar[str]
    import_verb: ClassVar[str] = "import"  # "load": Load CSV, Upload and load, Recent loads
    # More columns of the upload page's recent jobs, after the file (values from import_recent_values).
    import_recent_headings: ClassVar[tuple[str, ...]] = ()

    def has_import_permission(self, request: HttpRequest) -> bool:
        return bool(self.has_add_permission(request))  # type: ignore[attr-defined]

    def import_create(self, *, actor: Actor, form: Any, filename: str, content: bytes) -> ImportJob:
        """Queue the import of the uploaded file with the app's service; its job."""
        raise NotImplementedError

    def import_upload_context(self) -> dict[str, Any]:
        return {}

    def import_recent_values(self, job: ImportJob) -> list[Any]:
        return []

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise Http404
        form = self.import_form(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = self.import_create(
                    actor=Actor.from_request(request), form=form, filename=upload.name or "", content=upload.read()
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                return HttpResponseRedirect(reverse(f"admin:{self.import_url_name}-status", args=[job.public_id]))
        recent = (
            self.import_jobs()
            .filter(kind=self.import_kind)
            .defer("content", "errors")
            .order_by("-created_at")[:RECENT_IMPORTS]
        )
        opts = self.model._meta  # type: ignore[attr-defined]
        return self._page(
            request,
            "admin/import_upload.html",
            self.import_upload_title,
            form=form,
            help_template=f"{self.import_templates}/_import_help.html",
            import_verb=self.import_verb,
            changelist_url=f"admin:{opts.app_label}_{opts.model_name}_changelist",
            status_url=f"admin:{self.import_url_name}-status",
            recent_headings=self.import_recent_headings,
            recent=[(job, self.import_recent_values(job)) for job in recent],
            **self.import_upload_context(),
        )

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

    def import_status_lead(self, job: ImportJob) -> str:
        """What the status page says the file is, before "uploaded <when> by <whom>"."""
        return "Uploaded"

    def import_status_view(self, request: HttpRequest, id: Any) -> HttpResponse:
        job = self._job(request, id)
        title = self.import_status_title.format(filename=job.filename)
        opts = self.model._meta  # type: ignore[attr-defined]
        return self._page(
            request,
            "admin/import_status.html",
            title,
            import_verb=self.import_verb,
            changelist_url=f"admin:{opts.app_label}_{opts.model_name}_changelist",
            upload_url=f"admin:{self.import_url_name}",
            lead=self.import_status_lead(job),
            progress_template=f"{self.import_templates}/_import_progress.html",
            **self._progress_context(job),
        )

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
