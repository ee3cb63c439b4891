"""The SIP profile page's US minute bundles form: buy or cancel bundles."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.bundles.forms import BundleChangeForm, new_bundle_form
from apps.bundles.selectors import bundle_summary
from apps.bundles.services import bundles_buy, bundles_cancel
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.views import SipProfileDetailView, detail_context


def bundles_context(profile: SipProfile, form: BundleChangeForm | None = None) -> dict[str, Any]:
    return {
        "bundles": bundle_summary(profile=profile),
        "bundle_form": form or new_bundle_form(profile.us_minute_bundles),
    }


class ProfileBundlesView(SipProfileDetailView):
    """The SIP profile page (GET as sip_profiles renders it) with its bundles form's POST:
    the form posts to the page's own URL, so this view serves that URL."""

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        """The page's bundles form: buy or cancel US minute bundles. With htmx, only the
        bundles card is sent back; errors are the form's."""
        profile = self.get_object_or_404(id)
        form = BundleChangeForm(request.POST)
        done = ""
        if form.is_valid():
            data = form.cleaned_data
            count = data["count"]
            try:
                if data["action"] == "buy":
                    bundles_buy(actor=self.actor, profile=profile, count=count, key=data["key"])
                    done = f"{count} US minute bundle{'s' if count != 1 else ''} bought."
                else:
                    bundles_cancel(actor=self.actor, profile=profile, count=count, expected=data.get("held"))
                    done = (
                        f"{count} US minute bundle{'s' if count != 1 else ''} cancelled: "
                        "this period's minutes stay until it ends."
                    )
            except ApplicationError as error:
                add_application_error(form, error)
        profile = self.get_object_or_404(id)
        if done:
            if not request.htmx:  # type: ignore[attr-defined]
                messages.success(request, done)
                return redirect("sip-profile-detail", id=profile.public_id)
            context = {"profile": profile, "can_manage": True, "bundle_done": done, **bundles_context(profile)}
            return render(request, "sip_profiles/_bundles.html", context)
        if request.htmx:  # type: ignore[attr-defined]
            # 200: htmx swaps no 4xx answer, and the card with its form errors must replace the old one.
            context = {"profile": profile, "can_manage": True, **bundles_context(profile, form)}
            return render(request, "sip_profiles/_bundles.html", context)
        context = {"profile": profile, **detail_context(self, profile), **bundles_context(profile, form)}
        return render(request, "sip_profiles/detail.html", context, status=400)
