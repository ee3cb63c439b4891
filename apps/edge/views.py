"""The profile page's live status card: its content, which the card fetches and polls with htmx
(a page of its own without JavaScript)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views import View
from django_htmx.http import HttpResponseClientRefresh, HttpResponseStopPolling

from apps.companies.scoping import CompanyPageMixin
from apps.edge.live import profile_live_state
from apps.sip_profiles.models import SipProfile


class ProfileLiveStatusView(CompanyPageMixin, View):
    """Who can read the profile can read its live state (another company's profile: 404)."""

    model = SipProfile

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True)

    def handle_no_permission(self) -> HttpResponseBase:  # type: ignore[override]  # htmx: a refresh, not a redirect
        # A poll after the session ended: reload the page (which sends the user to sign in)
        # rather than swap the sign-in page into the card.
        if self.request.htmx:  # type: ignore[attr-defined]
            return HttpResponseClientRefresh()
        return super().handle_no_permission()  # type: ignore[no-any-return]

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        try:
            profile = self.get_object_or_404(id)
        except Http404:
            if request.htmx:  # type: ignore[attr-defined]
                # The profile was deleted while its page was open: the card stops polling.
                return HttpResponseStopPolling()
            raise
        context = {"profile": profile, "live": profile_live_state(profile=profile)}
        # htmx (the card's polling) swaps in the content; without JavaScript it is a page.
        template = "edge/_live_status.html" if request.htmx else "edge/live_status.html"  # type: ignore[attr-defined]
        response = render(request, template, context)
        response["Cache-Control"] = "no-store"
        return response
