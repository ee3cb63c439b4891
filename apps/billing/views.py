"""Allocation and statement pages."""

from __future__ import annotations

import csv
import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.billing import selectors
from apps.billing.allocations import credit_allocate, credit_take_back
from apps.billing.models import LedgerTransaction
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.sip_profiles.models import SipProfile


class AllocationForm(forms.Form):
    action = forms.ChoiceField(choices=[("allocate", "Allocate"), ("take_back", "Take back")])
    amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=4)
    # One key per rendered form: a double-click or a resubmitted page moves money once.
    key = forms.CharField(widget=forms.HiddenInput)


def new_allocation_form() -> AllocationForm:
    return AllocationForm(initial={"key": uuid.uuid4().hex})


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
        move = credit_allocate if data["action"] == "allocate" else credit_take_back
        try:
            move(
                actor=self.actor, profile=profile, amount=data["amount"], key=f"{self.company.public_id}:{data['key']}"
            )
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            verb = "allocated to" if data["action"] == "allocate" else "taken back from"
            messages.success(request, f"{data['amount']:.2f} {self.company.currency} {verb} {profile.name}.")
        return redirect("sip-profile-detail", id=profile.public_id)


class StatementView(CompanyPageMixin, View):
    """Each entry with date, description, amount and balance after; by month; as CSV."""

    def get(self, request: HttpRequest) -> HttpResponse:
        error = None
        try:
            entries = selectors.statement_entries(self.company, request.GET)
        except ApplicationError as problem:
            error, entries = problem.message, selectors.statement_entries(self.company, {})
        if request.GET.get("format") == "csv" and error is None:
            return self._csv(entries)
        page = Paginator(entries, 50).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        profiles = SipProfile.objects.for_company(self.company).live().order_by("name")
        context = {
            "page": page,
            "error": error,
            "profiles": profiles,
            "kinds": LedgerTransaction.Kind.choices,
            "query": query.urlencode(),
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
