from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from apps.companies import services
from apps.companies.models import Company, PurchasePolicy, VerificationRequest
from apps.companies.selectors import purchase_policy_for_company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.money import format_money


class CompanyAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Company
        fields = ["purchase_limit_override"]


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = CompanyAdminForm
    list_display = ("name", "country", "currency", "verification_status", "effective_limit", "created_at")
    list_filter = ("verification_status", "currency", "country")
    search_fields = ("name", "public_id", "memberships__user__email")
    readonly_fields = (
        "public_id",
        "name",
        "country",
        "currency",
        "verification_status",
        "verified_at",
        "created_at",
        "members",
    )
    fields = (*readonly_fields, "purchase_limit_override")
    actions = ["revoke_verification"]

    @admin.display(description="Purchase limit")
    def effective_limit(self, company: Company) -> str:
        policy = purchase_policy_for_company(company)
        suffix = " (override)" if policy.limit_overridden else ""
        return format_money(policy.max_purchase, company.currency) + suffix

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # companies are created by signing up

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # nothing with history is deleted

    def save_model(self, request: HttpRequest, obj: Company, form: Any, change: bool) -> None:
        services.company_set_purchase_limit_override(
            actor=Actor.from_request(request), company=obj, limit=form.cleaned_data["purchase_limit_override"]
        )

    @admin.display(description="Members")
    def members(self, company: Company) -> str:
        return format_html_join(
            mark_safe("<br>"),
            "{} ({})",
            ((m.user.email, m.get_role_display()) for m in company.memberships.select_related("user")),
        )

    @admin.action(description="Withdraw verification (asks for a reason)")
    def revoke_verification(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        if "reason" in request.POST:
            reason = request.POST["reason"]
            for company in queryset:
                try:
                    services.company_verification_revoke(
                        actor=Actor.from_request(request), company=company, reason=reason
                    )
                except ApplicationError as error:
                    self.message_user(request, f"{company}: {error.message}", messages.ERROR)
                else:
                    self.message_user(request, f"{company} is no longer verified.")
            return None
        return render(
            request,
            "admin/companies/revoke_verification.html",
            {"companies": queryset, "opts": self.model._meta, "action": "revoke_verification"},
        )


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, help_text="The company sees this reason.")


@admin.register(VerificationRequest)
class VerificationRequestAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("company", "legal_name", "registration_number", "status", "created_at", "reviewed_at")
    list_filter = ("status",)
    search_fields = ("company__name", "legal_name", "registration_number")
    readonly_fields = (
        "company",
        "legal_name",
        "registration_number",
        "address_line1",
        "address_line2",
        "city",
        "postal_code",
        "country",
        "status",
        "submitted_by",
        "created_at",
        "reviewed_by",
        "reviewed_at",
        "reason",
        "document_links",
    )
    fields = readonly_fields
    change_form_template = "admin/companies/verificationrequest/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Documents")
    def document_links(self, obj: VerificationRequest) -> str:
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}" target="_blank" rel="noopener">{}</a> ({} KB)',
            (
                (reverse("verification-document", args=[d.public_id]), d.original_name, d.size // 1024)
                for d in obj.documents.all()
            ),
        )

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/approve/", self.admin_site.admin_view(self.approve_view), name="verification-approve"),
            path("<int:pk>/reject/", self.admin_site.admin_view(self.reject_view), name="verification-reject"),
            *super().get_urls(),
        ]

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:companies_verificationrequest_change", args=[pk]))

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        verification = get_object_or_404(VerificationRequest, pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, verification):
            return self._back(pk)
        try:
            services.verification_approve(actor=Actor.from_request(request), request=verification)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, f"{verification.company} is verified.")
        return self._back(pk)

    def reject_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        verification = get_object_or_404(VerificationRequest, pk=pk)
        form = RejectForm(request.POST or None)
        if request.method == "POST" and self.has_change_permission(request, verification) and form.is_valid():
            try:
                services.verification_reject(
                    actor=Actor.from_request(request), request=verification, reason=form.cleaned_data["reason"]
                )
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"The request of {verification.company} was rejected.")
            return self._back(pk)
        return render(
            request,
            "admin/companies/verificationrequest/reject.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "verification": verification,
                "opts": self.model._meta,
                "title": f"Reject the verification of {verification.company}",
            },
        )


@admin.register(PurchasePolicy)
class PurchasePolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("tier", "max_purchase", "allow_card", "allow_paypal", "allow_bank_wire", "updated_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
