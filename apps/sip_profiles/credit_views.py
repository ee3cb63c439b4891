"""The SIP profile page's credit forms: allocate or take back credit, and the profile's
auto-recharge. The profile owns these pages; billing provides the forms and services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views import View

from apps.billing.ledger.allocations import credit_move
from apps.billing.ledger.views import AllocationForm
from apps.billing.recharge import profile as profile_recharge
from apps.billing.recharge.views import ProfileAutoRechargeForm, flash_errors
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.money import format_money
from apps.sip_profiles.models import SipProfile


class ProfileCreditView(CompanyPageMixin, View):
    model = SipProfile
    write_capability = Capability.MANAGE_BILLING

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True)

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        form = AllocationForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                messages.error(request, " ".join(str(e) for e in errors))
            return redirect("sip-profile-detail", id=profile.public_id)
        data = form.cleaned_data
        try:
            # The form's key makes a page sent twice move the credit once (the API's rule).
            credit_move(
                actor=self.actor, profile=profile, action=data["action"], amount=data["amount"], request_key=data["key"]
            )
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            verb = "allocated to" if data["action"] == "allocate" else "taken back from"
            messages.success(request, f"{format_money(data['amount'], self.company.currency)} {verb} {profile.name}.")
        return redirect("sip-profile-detail", id=profile.public_id)


class ProfileAutoRechargeView(CompanyPageMixin, View):
    """Saves a SIP profile's auto-recharge from the profile page's Credit card."""

    model = SipProfile
    write_capability = Capability.MANAGE_BILLING

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True)

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        form = ProfileAutoRechargeForm(request.POST)
        if form.is_valid():
            try:
                profile_recharge.profile_auto_recharge_update(actor=self.actor, profile=profile, **form.cleaned_data)
            except ApplicationError as error:
                flash_errors(request, error.errors, error.message)
            else:
                messages.success(request, f"Auto-recharge of {profile.name} saved.")
        else:
            flash_errors(request, form.errors, "Check the auto-recharge settings.")
        return redirect("sip-profile-detail", id=profile.public_id)
