from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from apps.billing.ledger.allocations import profile_balance
from apps.billing.ledger.selectors import company_balance, profile_credit_history
from apps.billing.ledger.views import AllocationForm, new_allocation_form
from apps.billing.pages import act_once, confirm_page, priced_post
from apps.billing.recharge.views import ProfileAutoRechargeForm, profile_auto_recharge_context
from apps.callerid.selectors import caller_id_options
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.prg import no_store, redirect_done, secret_pop
from apps.sip_profiles import services
from apps.sip_profiles.filters import SipProfilePageFilter
from apps.sip_profiles.forms import SipProfileForm, address_error_messages, addresses_to_text
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.selectors import with_details

# The profile page's credit history: its latest lines, from its latest days with an entry.
HISTORY_LINES = 10
HISTORY_DAYS = 10


class _ProfilePage(CompanyPageMixin, View):
    model = SipProfile
    write_capability = Capability.MANAGE_SERVICE

    def scope_queryset(self, queryset: Any) -> Any:
        return with_details(queryset.filter(deleted_at__isnull=True))

    def caller_id_choices(self) -> list[tuple[str, str]]:
        return [(option.e164, option.label) for option in caller_id_options(company=self.company)]

    def apply_error(self, form: SipProfileForm, error: ApplicationError) -> None:
        address_messages = {k: v for k, v in error.errors.items() if k.startswith("allowed_ips")}
        if address_messages:
            for message in address_error_messages(ApplicationError(error.message, errors=address_messages)):
                form.add_error("allowed_ips", message)
            rest = {k: v for k, v in error.errors.items() if k not in address_messages}
            if rest:
                add_application_error(form, ApplicationError(error.message, errors=rest))
        else:
            add_application_error(form, error)


class SipProfileListView(_ProfilePage):
    def get(self, request: HttpRequest) -> HttpResponse:
        # A filter value that is not valid filters nothing (the page's choices are the valid ones).
        profiles = SipProfilePageFilter(request.GET, queryset=self.get_queryset().order_by("name")).qs
        context = {
            "profiles": profiles,
            "can_manage": self.tenancy.can(Capability.MANAGE_SERVICE),
            "auth_choices": SipProfile.AuthMethod.choices,
            "status_choices": SipProfile.Status.choices,
        }
        template = "sip_profiles/_rows.html" if request.htmx else "sip_profiles/list.html"  # type: ignore[attr-defined]
        return render(request, template, context)


class SipProfileCreateView(_ProfilePage):
    read_capability = Capability.MANAGE_SERVICE

    def get(self, request: HttpRequest) -> HttpResponse:
        form = SipProfileForm(caller_id_choices=self.caller_id_choices())
        return render(request, "sip_profiles/form.html", {"form": form, "creating": True})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SipProfileForm(request.POST, caller_id_choices=self.caller_id_choices())
        if form.is_valid():
            data = dict(form.cleaned_data)
            data.pop("status", None)
            data["caller_id"] = data["caller_id"] or None

            def create() -> HttpResponse:
                try:
                    profile, password = services.sip_profile_create(actor=self.actor, company=self.company, **data)
                except ApplicationError as error:
                    self.apply_error(form, error)
                    return self._form(form, status=400)
                # The password is shown once, on the page redirected to (from the session).
                return redirect_done(
                    request,
                    reverse("sip-profile-detail", args=[profile.public_id]),
                    message=f"The profile “{profile.name}” was created.",
                    secret=password,
                )

            try:
                return priced_post(
                    request,
                    company=self.company,
                    quote=lambda: services.sip_profile_create_quote(company=self.company, **data),
                    act=create,
                    confirm=lambda context: confirm_page(request, context),
                    back=lambda: self._form(form),
                    title=f"Create “{data['name']}”",
                    button="Confirm and create",
                    cancel_url=reverse("sip-profile-list"),
                )
            except ApplicationError as error:
                self.apply_error(form, error)
        return self._form(form, status=400)

    def _form(self, form: SipProfileForm, status: int = 200) -> HttpResponse:
        return render(self.request, "sip_profiles/form.html", {"form": form, "creating": True}, status=status)


def detail_context(
    page: CompanyPageMixin,
    profile: SipProfile,
    *,
    allocation_form: AllocationForm | None = None,
    auto_recharge_form: ProfileAutoRechargeForm | None = None,
) -> dict[str, Any]:
    """The profile page's context; a credit form sent with errors is shown as it was sent."""
    return {
        "caller_id": services.caller_id_e164(profile),
        "can_manage": page.tenancy.can(Capability.MANAGE_SERVICE),
        "can_bill": page.tenancy.can(Capability.MANAGE_BILLING),
        "sip_domain": settings.SIP_DOMAIN,
        "balance": profile_balance(profile),
        "company_balance": company_balance(page.company),
        "allocation_form": allocation_form or new_allocation_form(),
        # Its calls one line a day, so each balance after is the line before plus its amount.
        "history": profile_credit_history(profile=profile, last_days=HISTORY_DAYS)[:HISTORY_LINES],
        **profile_auto_recharge_context(profile, form=auto_recharge_form),
        # The bundles card is rendered by apps.bundles' template tags; its form posts to
        # apps.bundles.views.ProfileBundlesView, which serves this page at the same URL.
    }


class SipProfileDetailView(_ProfilePage):
    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        # A new SIP password, brought once by the redirect after a creation or a reset.
        password = secret_pop(request) if profile.auth_method == SipProfile.AuthMethod.REGISTRATION else None
        context = {"profile": profile, "password": password, **detail_context(self, profile)}
        response = render(request, "sip_profiles/detail.html", context)
        return no_store(response) if password is not None else response


class SipProfileEditView(_ProfilePage):
    read_capability = Capability.MANAGE_SERVICE

    def _initial(self, profile: SipProfile) -> dict[str, Any]:
        return {
            "name": profile.name,
            "description": profile.description,
            "allowed_ips": addresses_to_text(
                [
                    {"address": a.network, "port": a.port, "transport": a.transport}
                    for a in profile.allowed_addresses.all()
                ]
            ),
            "channels": profile.channels,
            "caller_id": services.caller_id_e164(profile) or "",
            "withhold_caller_id": profile.withhold_caller_id,
            "tls_required": profile.tls_required,
            "srtp_required": profile.srtp_required,
            "status": profile.status,
        }

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        form = SipProfileForm(initial=self._initial(profile), caller_id_choices=self.caller_id_choices(), editing=True)
        return render(request, "sip_profiles/form.html", {"form": form, "profile": profile})

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        form = SipProfileForm(request.POST, caller_id_choices=self.caller_id_choices(), editing=True)
        if form.is_valid():
            data = dict(form.cleaned_data)
            data["caller_id"] = data["caller_id"] or None
            if profile.auth_method == SipProfile.AuthMethod.REGISTRATION and not data["allowed_ips"]:
                data.pop("allowed_ips")
            if not data.get("status"):
                data.pop("status", None)

            def update() -> HttpResponse:
                try:
                    services.sip_profile_update(actor=self.actor, profile=profile, **data)
                except ApplicationError as error:
                    self.apply_error(form, error)
                    return self._form(form, profile, status=400)
                return redirect_done(
                    request,
                    reverse("sip-profile-detail", args=[profile.public_id]),
                    message="Saved. The SIP edge picks up the change within a minute.",
                )

            try:
                # More channels are charged (prorated to the renewal day): their price is confirmed first.
                return priced_post(
                    request,
                    company=self.company,
                    quote=lambda: services.sip_profile_channels_quote(profile=profile, channels=data["channels"]),
                    act=update,
                    confirm=lambda context: confirm_page(request, context),
                    back=lambda: self._form(form, profile),
                    title=f"Change the channels of “{profile.name}”",
                    button="Confirm and save",
                    cancel_url=reverse("sip-profile-detail", args=[profile.public_id]),
                    confirm_free=False,
                )
            except ApplicationError as error:
                self.apply_error(form, error)
        return self._form(form, profile, status=400)

    def _form(self, form: SipProfileForm, profile: SipProfile, status: int = 200) -> HttpResponse:
        return render(self.request, "sip_profiles/form.html", {"form": form, "profile": profile}, status=status)


class SipProfileResetPasswordView(_ProfilePage):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        detail = reverse("sip-profile-detail", args=[profile.public_id])

        def reset() -> HttpResponse:
            try:
                password = services.sip_profile_reset_password(actor=self.actor, profile=profile)
            except ApplicationError as error:
                messages.error(request, error.message)
                return redirect(detail)
            return redirect_done(
                request,
                detail,
                message="A new password was set. The old one stops working once the edge is updated.",
                secret=password,
            )

        # Sent twice (a reload, a double click), the form makes one password.
        return act_once(request, company=self.company, act=reset)


class SipProfileDeleteView(_ProfilePage):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        try:
            services.sip_profile_delete(actor=self.actor, profile=profile)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("sip-profile-detail", id=profile.public_id)
        messages.success(request, f"“{profile.name}” was deleted; its business accounts were released.")
        return redirect("sip-profile-list")


class ConnectPbxView(_ProfilePage):
    """Everything a PBX administrator needs to point the PBX at us."""

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        profile = self.get_object_or_404(id)
        # The edge servers and DNS SRV records are the edge's cards (apps.edge.templatetags).
        context = {
            "profile": profile,
            "sip_domain": settings.SIP_DOMAIN,
            "rtp_last_port": 8000 + 2 * profile.channels,
            "caller_id": services.caller_id_e164(profile),
        }
        return render(request, "sip_profiles/connect.html", context)
