from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse

from apps.billing.models import (
    Charge,
    CreditPurchase,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Price,
    SavedPaymentMethod,
    StripeEvent,
)
from apps.billing.money import format_money
from apps.billing.purchases.refunds import purchase_refund
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.core.actor import Actor
from apps.core.admin_lists import EstimatedCountPaginator, IndexedValuesFilter, exact_search
from apps.core.admin_readonly import ReadOnlyAdmin
from apps.core.exceptions import ApplicationError


def _is_uuid(term: str) -> bool:
    try:
        uuid.UUID(term)
    except ValueError:
        return False
    return True


class ConfirmWireForm(forms.Form):
    amount_received = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        help_text="What arrived on the bank account, after the bank's charges. This is what is credited.",
    )


class RefundForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, help_text="Kept in the audit log.")


@admin.register(CreditPurchase)
class CreditPurchaseAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("created_at", "company", "method", "amount", "currency", "status", "wire_reference")
    # A growing table (apps.core.admin_lists): a date range, an estimated count, exact searches
    # on indexes (every searched column is unique, the company's name a sub-select).
    list_filter = (("created_at", admin.DateFieldListFilter), "status", "method", "currency")
    search_fields = ("public_id", "wire_reference", "stripe_payment_intent", "company__name")
    search_help_text = "Exactly: the purchase's id, the wire reference, the PaymentIntent (pi_…) or the company's name."
    list_select_related = ("company",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        term = search_term.strip()
        text = ["wire_reference", "stripe_payment_intent", "company__name"]
        if _is_uuid(term):
            text.append("public_id")
        return exact_search(queryset, term, text=text), False

    readonly_fields = (
        "public_id",
        "company",
        "amount",
        "currency",
        "method",
        "status",
        "wire_reference",
        "amount_received",
        "stripe_payment_intent",
        "stripe_setup_intent",
        "stripe_refund",
        "card_brand",
        "card_last4",
        "save_card",
        "created_by",
        "created_at",
        "succeeded_at",
        "refunded_at",
        "credit_transaction",
        "refund_transaction",
        "refund_reason",
        "refund_attempts",
        "failure_message",
    )
    fields = readonly_fields
    change_form_template = "admin/billing/creditpurchase/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/confirm-wire/", self.admin_site.admin_view(self.confirm_wire_view), name="purchase-wire"),
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="purchase-refund"),
            *super().get_urls(),
        ]

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:billing_creditpurchase_change", args=[pk]))

    def _form_page(self, request: HttpRequest, purchase: CreditPurchase, form: forms.Form, title: str) -> HttpResponse:
        return render(
            request,
            "admin/billing/creditpurchase/action.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "purchase": purchase,
                "opts": self.model._meta,
                "title": title,
            },
        )

    def confirm_wire_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        purchase = get_object_or_404(CreditPurchase.objects.select_related("company"), pk=pk)
        if not self.has_change_permission(request, purchase):
            return self._back(pk)
        form = ConfirmWireForm(request.POST or None, initial={"amount_received": purchase.amount})
        if request.method == "POST" and form.is_valid():
            try:
                purchase = purchase_confirm_wire(
                    actor=Actor.from_request(request),
                    purchase=purchase,
                    amount_received=form.cleaned_data["amount_received"],
                )
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{format_money(purchase.amount_received or Decimal(0), purchase.currency)} "
                    f"credited to {purchase.company}.",
                )
            return self._back(pk)
        return self._form_page(request, purchase, form, f"Confirm wire {purchase.wire_reference} received")

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        purchase = get_object_or_404(CreditPurchase.objects.select_related("company"), pk=pk)
        if not self.has_change_permission(request, purchase):
            return self._back(pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                purchase = purchase_refund(
                    actor=Actor.from_request(request), purchase=purchase, reason=form.cleaned_data["reason"]
                )
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"Refunded: {purchase}.")
            return self._back(pk)
        return self._form_page(request, purchase, form, f"Refund {purchase}")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "type", "event_id", "status", "attempts", "processed_at")
    # A growing table (apps.core.admin_lists): a date range, the types from their index, an
    # estimated count, the event id compared exactly (unique).
    list_filter = (("received_at", admin.DateFieldListFilter), "status", ("type", IndexedValuesFilter))
    search_fields = ("event_id",)
    search_help_text = "Exactly: Stripe's event id (evt_…)."
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, text=("event_id",)), False

    readonly_fields = ("event_id", "type", "status", "error", "attempts", "received_at", "processed_at", "payload")


@admin.register(SavedPaymentMethod)
class SavedPaymentMethodAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("company", "brand", "last4", "exp_month", "exp_year", "is_default", "created_at")
    search_fields = ("company__name", "stripe_id")
    list_select_related = ("company",)
    readonly_fields = ("company", "stripe_id", "brand", "last4", "exp_month", "exp_year", "is_default", "created_by")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Staff set the monthly price of a channel and of a US minute bundle, per currency.
    A change applies to charges made after it; recorded charges keep their price."""

    list_display = ("kind", "currency", "amount", "updated_at")
    list_editable = ("amount",)
    list_filter = ("kind", "currency")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "company", "description", "amount", "currency", "status", "grace_until", "paid_at")
    # A growing table (every renewal is a row): an estimated count, exact searches on indexes.
    list_filter = (("created_at", admin.DateFieldListFilter), "status", "kind", "currency")
    search_fields = ("company__name", "idempotency_key")
    search_help_text = "Exactly: the idempotency key or the company's name."
    list_select_related = ("company",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, text=("idempotency_key", "company__name")), False


class LedgerEntryInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LedgerEntry
    fields = ("account", "amount", "balance_after")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "company", "description", "currency", "idempotency_key")
    # A growing table (apps.core.admin_lists): an estimated count, exact searches on indexes.
    list_filter = (("created_at", admin.DateFieldListFilter), "kind", "currency")
    search_fields = ("idempotency_key", "company__name")
    search_help_text = "Exactly: the idempotency key (cdr:<node>:<id>, stripe:<payment intent>…) or the company's name."
    list_select_related = ("company",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    inlines = [LedgerEntryInline]

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, text=("idempotency_key", "company__name")), False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("kind", "company", "sip_profile", "currency", "balance", "updated_at")
    list_filter = ("kind", "currency")
    list_select_related = ("company", "sip_profile")
    search_fields = ("company__name", "sip_profile__name")
