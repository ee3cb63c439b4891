"""The statement page and the allocation form (the profile page posts it to apps.sip_profiles.credit_views)."""

from __future__ import annotations

import csv
import uuid
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from apps.billing.ledger import selectors
from apps.billing.ledger.filters import StatementFilter
from apps.billing.models import LedgerAccount, LedgerTransaction
from apps.companies.scoping import CompanyPageMixin


class AllocationForm(forms.Form):
    action = forms.ChoiceField(
        label="Allocate or take back", choices=[("allocate", "Allocate"), ("take_back", "Take back")]
    )
    amount = forms.DecimalField(
        min_value=0,
        max_digits=14,
        decimal_places=4,
        # A text box: a number box would send nothing for "12,50", and the page could not say why.
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "25.00"}),
    )
    # One key per rendered form: a double-click or a resubmitted page moves money once.
    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The profile page has other amount fields (auto-recharge, bundles): ids of its own.
        kwargs.setdefault("auto_id", "id_credit_%s")
        super().__init__(*args, **kwargs)


def new_allocation_form() -> AllocationForm:
    return AllocationForm(initial={"key": uuid.uuid4().hex})


class StatementView(CompanyPageMixin, View):
    """Each entry with date, description, amount and balance after; by month; as CSV."""

    def get(self, request: HttpRequest) -> HttpResponse:
        error = None
        entries = selectors.statement_entries(company=self.company)
        filters = StatementFilter(request.GET, queryset=entries, request=request)
        if filters.is_valid():
            entries = filters.qs
        else:
            # The first bad filter is said, and the whole statement shown.
            error = next(iter(filters.errors.values()))[0]
            entries = StatementFilter({}, queryset=entries, request=request).qs
        if request.GET.get("format") == "csv" and error is None:
            return self._csv(entries)
        profile = filters.form.cleaned_data.get("profile") if error is None else None
        lines: Any = entries
        if profile is not None and not filters.form.cleaned_data.get("kind"):
            # A profile's history: its calls one line a day, so each balance after adds up.
            month = filters.form.cleaned_data.get("month") or None
            lines = selectors.profile_credit_history(profile=profile, month=month)
        page = Paginator(lines, 50).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        # The profile model through the account's foreign key: billing imports no product.
        profile_model = LedgerAccount._meta.get_field("sip_profile").related_model
        profiles = profile_model._default_manager.for_company(self.company).live().order_by("name")  # type: ignore[union-attr]
        context = {
            "page": page,
            "error": error,
            "profiles": profiles,
            "kinds": LedgerTransaction.Kind.choices,
            "query": query.urlencode(),
            "history_profile": profile.public_id if profile is not None and lines is not entries else None,
        }
        return render(request, "billing/statement.html", context)

    def _csv(self, entries: Any) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        month = self.request.GET.get("month") or "all"
        response["Content-Disposition"] = f'attachment; filename="statement-{month}.csv"'
        writer = csv.writer(response)
        writer.writerow(["date", "transaction", "kind", "description", "amount", "currency", "balance_after"])
        for entry in entries.iterator(chunk_size=2000):
            writer.writerow(
                [
                    entry.created_at.isoformat(),
                    entry.transaction.public_id,
                    entry.transaction.kind,
                    entry.transaction.description,
                    entry.amount,
                    self.company.currency,
                    entry.balance_after,
                ]
            )
        return response
