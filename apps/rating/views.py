from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.rating import selectors
from apps.rating.forms import RateLookupForm


class RateLookupView(CompanyPageMixin, View):
    """Check what a call costs before making it, or why a number may never be called."""

    def get(self, request: HttpRequest) -> HttpResponse:
        company = self.company
        form = RateLookupForm(request.GET if "number" in request.GET else None)
        found: Any = None
        if form.is_bound and form.is_valid():
            try:
                found = selectors.rate_lookup(
                    number=form.cleaned_data["number"], currency=company.currency, region=company.country.code
                )
            except ApplicationError as error:
                add_application_error(form, error)
        return render(
            request,
            "rating/lookup.html",
            {
                "form": form,
                "blocked": found if isinstance(found, selectors.Blocked) else None,
                "match": found if isinstance(found, selectors.RateMatch) else None,
                "currency": company.currency,
                "country": company.country,
            },
        )
