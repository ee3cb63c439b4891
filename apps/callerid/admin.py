from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from apps.callerid import services
from apps.callerid.models import CallerIdCountry, Landline
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, help_text="The company sees this reason.")


@admin.register(Landline)
class LandlineAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("number", "company", "status", "created_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("number", "company__name", "public_id")
    list_select_related = ("company",)
    readonly_fields = (
        "public_id",
        "company",
        "company_verification",
        "number",
        "proof_link",
        "status",
        "reason",
        "submitted_by",
        "created_at",
        "reviewed_by",
        "verified_at",
        "expires_at",
    )
    fields = readonly_fields
    change_form_template = "admin/callerid/landline/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # companies register landlines themselves

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # history stays; a bad landline is rejected

    @admin.display(description="Company verification")
    def company_verification(self, obj: Landline) -> str:
        return obj.company.get_verification_status_display()

    @admin.display(description="Proof of ownership")
    def proof_link(self, obj: Landline) -> str:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            reverse("landline-proof", args=[obj.public_id]),
            obj.proof_name,
        )

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/approve/", self.admin_site.admin_view(self.approve_view), name="landline-approve"),
            path("<int:pk>/reject/", self.admin_site.admin_view(self.reject_view), name="landline-reject"),
            *super().get_urls(),
        ]

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:callerid_landline_change", args=[pk]))

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        landline = get_object_or_404(Landline, pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, landline):
            return self._back(pk)
        try:
            services.landline_approve(actor=Actor.from_request(request), landline=landline)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, f"{landline.number} of {landline.company} is verified for 12 months.")
        return self._back(pk)

    def reject_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        landline = get_object_or_404(Landline.objects.select_related("company"), pk=pk)
        form = RejectForm(request.POST or None)
        if request.method == "POST" and self.has_change_permission(request, landline) and form.is_valid():
            try:
                services.landline_reject(
                    actor=Actor.from_request(request), landline=landline, reason=form.cleaned_data["reason"]
                )
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{landline.number} of {landline.company} was rejected.")
            return self._back(pk)
        return render(
            request,
            "admin/callerid/landline/reject.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "landline": landline,
                "opts": self.model._meta,
                "title": f"Reject landline {landline.number} of {landline.company}",
            },
        )


@admin.register(CallerIdCountry)
class CallerIdCountryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Countries whose numbers profiles may present. Removing one takes such numbers off
    every profile that presents them (and tells those companies)."""

    list_display = ("country", "note")
    search_fields = ("country", "note")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A country is added or removed, never changed into another: removal has consequences.
        return ("country",) if obj is not None else ()

    def delete_model(self, request: HttpRequest, obj: CallerIdCountry) -> None:
        changed = services.caller_id_country_remove(actor=Actor.from_request(request), country=obj)
        if changed:
            profiles = ngettext("%(n)d profile", "%(n)d profiles", changed) % {"n": changed}
            self.message_user(request, f"Caller ID was removed from {profiles} presenting numbers in {obj}.")

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for country in queryset:
            self.delete_model(request, country)
