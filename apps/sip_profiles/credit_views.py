"""The SIP profile page's credit forms: allocate or take back credit, and the profile's
auto-recharge. The profile owns these pages; billing provides the forms and services. A form
sent with errors comes back on the profile page (400) with every value and choice as sent and
each error under its field; one that succeeds redirects to the page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.billing.ledger.allocations import credit_move
from apps.billing.ledger.views import AllocationForm
from apps.billing.pages import OncePostMixin
from apps.billing.recharge import profile as profile_recharge
from apps.billing.recharge.views import ProfileAutoRechargeForm
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.money import format_money
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.selectors import with_details
from apps.sip_profiles.views import detail_context


class _ProfileCreditForm(CompanyPageMixin, View):
    model = SipProfile
    write_capability = Capability.MANAGE_BILLING

    def scope_queryset(self, queryset: Any) -> Any:
        return with_details(queryset.filter(deleted_at__isnull=True))

    def render_with_errors(self, profile: SipProfile, **forms: Any) -> HttpResponse:
        context = {"profile": profile, **detail_context(self, profile, **forms)}
        return render(self.request, "sip_profiles/detail.html", context, status=400)


class ProfileCreditView(_ProfileCreditForm):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        form = AllocationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # The form's key makes a page sent twice move the credit once (the API's rule).
                credit_move(
                    actor=self.actor,
                    profile=profile,
                    action=data["action"],
                    amount=data["amount"],
                    request_key=data["key"],
                )
            except ApplicationError as error:
                # A balance too low for the move is about the amount typed.
                if not error.errors:
                    form.add_error("amount", error.message)
                else:
                    add_application_error(form, error)
            else:
                verb = "allocated to" if data["action"] == "allocate" else "taken back from"
                amount = format_money(data["amount"], self.company.currency)
                messages.success(request, f"{amount} {verb} {profile.name}.")
                return redirect("sip-profile-detail", id=profile.public_id)
        return self.render_with_errors(profile, allocation_form=form)


class ProfileAutoRechargeView(OncePostMixin, _ProfileCreditForm):
    """Saves a SIP profile's auto-recharge from the profile page's Credit card."""

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        form = ProfileAutoRechargeForm(request.POST)
        if form.is_valid():
            try:
                profile_recharge.profile_auto_recharge_update(actor=self.actor, profile=profile, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, f"Auto-recharge of {profile.name} saved.")
                return redirect("sip-profile-detail", id=profile.public_id)
        return self.render_with_errors(profile, auto_recharge_form=form)
