"""The SIP profile page's US minute bundles form: buy or cancel bundles."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import ngettext

from apps.billing.pages import confirm_page, priced_post
from apps.billing.quotes import Quote
from apps.bundles.forms import BundleChangeForm, new_bundle_form
from apps.bundles.selectors import bundle_summary
from apps.bundles.services import bundles_buy, bundles_buy_quote, bundles_cancel, bundles_cancel_quote
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.prg import redirect_done
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
        """The page's bundles form: buy or cancel US minute bundles, after a confirmation step
        that names the price (in the card, with htmx). Done, it redirects to the page; with htmx
        the card takes the page's new card, and every figure the change moved (the balances,
        the profile's bundles and minutes, the message) is swapped too (hx-select-oob)."""
        profile = self.get_object_or_404(id)
        form = BundleChangeForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            count = data["count"]
            buying = data["action"] == "buy"
            bundles = ngettext("%(n)d US minute bundle", "%(n)d US minute bundles", count) % {"n": count}

            def change() -> HttpResponse:
                try:
                    if buying:
                        bundles_buy(actor=self.actor, profile=profile, count=count, key=data["key"])
                        done = f"{bundles} bought."
                    else:
                        bundles_cancel(actor=self.actor, profile=profile, count=count, expected=data.get("held"))
                        done = f"{bundles} cancelled: this period's minutes stay until it ends."
                except ApplicationError as error:
                    add_application_error(form, error)
                    return self._refused(profile, form)
                return redirect_done(request, reverse("sip-profile-detail", args=[profile.public_id]), message=done)

            def quote() -> Quote:
                if buying:
                    return bundles_buy_quote(profile=profile, count=count)
                return bundles_cancel_quote(profile=profile, count=count)

            try:
                return priced_post(
                    request,
                    company=self.company,
                    quote=quote,
                    act=change,
                    confirm=lambda context: self._confirm(profile, context),
                    back=lambda: self._refused(profile, form, status=200),
                    title=f"Buy {bundles}" if buying else f"Cancel {bundles}",
                    button="Confirm and buy" if buying else "Confirm and cancel",
                    cancel_url=reverse("sip-profile-detail", args=[profile.public_id]),
                )
            except ApplicationError as error:
                add_application_error(form, error)
        return self._refused(profile, form)

    def _confirm(self, profile: SipProfile, context: dict[str, Any]) -> HttpResponse:
        if not self.request.htmx:  # type: ignore[attr-defined]
            return confirm_page(self.request, context)
        card = {"profile": profile, "can_manage": True, **bundles_context(profile), **context}
        return render(self.request, "sip_profiles/_bundles.html", card)

    def _refused(self, profile: SipProfile, form: BundleChangeForm, status: int = 400) -> HttpResponse:
        profile = self.get_object_or_404(profile.public_id)
        if self.request.htmx:  # type: ignore[attr-defined]
            # 200: htmx swaps no 4xx answer, and the card with its form errors must replace the old one.
            context = {"profile": profile, "can_manage": True, **bundles_context(profile, form)}
            return render(self.request, "sip_profiles/_bundles.html", context)
        context = {"profile": profile, **detail_context(self, profile), **bundles_context(profile, form)}
        return render(self.request, "sip_profiles/detail.html", context, status=status)
