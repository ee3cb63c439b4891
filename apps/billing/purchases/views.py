"""Buying credit in the browser: the credit page, paying, receipts, saved cards; the Stripe webhook."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase, SavedPaymentMethod
from apps.billing.money import format_money
from apps.billing.pages import OncePostMixin
from apps.billing.purchases import clients, payment_methods, selectors, services, webhooks
from apps.billing.purchases.receipts import receipt_number, receipt_pdf
from apps.billing.recharge.views import AutoRechargeForm, auto_recharge_context, auto_recharge_save
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.companies.selectors import purchase_policy_for_company
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error

logger = logging.getLogger(__name__)

HISTORY_SHOWN = 50


class BuyCreditForm(forms.Form):
    amount = forms.CharField(
        max_length=20, widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
    )
    # Every method is a choice; the purchase service says clearly why one is not allowed.
    method = forms.ChoiceField(choices=CreditPurchase.Method.choices, label="Pay by")
    save_card = forms.BooleanField(required=False, label="Save this card for later payments (auto-recharge)")


class PayForm(forms.Form):
    setup_intent = forms.CharField(required=False, max_length=255)
    saved_card = forms.UUIDField(required=False)


def _stripe_config(**values: Any) -> dict[str, Any]:
    return {"publishableKey": settings.STRIPE_PUBLISHABLE_KEY, **values}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def stripe_content_security_policy() -> dict[str, list[str]]:
    """What the payment pages add to the site's Content-Security-Policy: Stripe.js, the API it
    calls, and the frames it opens (card fields, 3-D Secure, PayPal), from Stripe's own
    origins, or from localstripe's when STRIPE_API_BASE points there. Only these pages get it."""
    js = _origin(settings.STRIPE_JS_URL)
    api = _origin(settings.STRIPE_API_BASE) or "https://api.stripe.com"
    frames = ["https://js.stripe.com", "https://hooks.stripe.com"]
    scripts = [o for o in (js,) if o]
    return {
        "script-src": scripts,
        "connect-src": [api, *scripts],
        "frame-src": [*frames, *scripts, api],
        "img-src": ["https://*.stripe.com"],
    }


class _CreditPage(CompanyPageMixin, View):
    """The credit pages: each may load Stripe.js, so each carries Stripe's origins in its
    Content-Security-Policy (the rest of the site allows none)."""

    model = CreditPurchase
    write_capability = Capability.MANAGE_BILLING

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = super().dispatch(request, *args, **kwargs)
        response._csp_update = stripe_content_security_policy()  # type: ignore[attr-defined]  # django-csp reads it
        return response

    def _common(self) -> dict[str, Any]:
        return {
            "can_buy": self.tenancy.can(Capability.MANAGE_BILLING),
            "currency": self.company.currency,
            "stripe_js_url": settings.STRIPE_JS_URL,
        }


class CreditView(_CreditPage):
    """The company balance, the buy-credit form, saved cards and purchase history."""

    def _render(
        self, form: BuyCreditForm, status: int = 200, *, auto_recharge_form: AutoRechargeForm | None = None
    ) -> HttpResponse:
        company = self.company
        policy = purchase_policy_for_company(company)
        context = {
            **self._common(),
            "balance": company_balance(company),
            "policy": policy,
            "purchase_limits": f"From {format_money(settings.MINIMUM_PURCHASE)} to "
            f"{format_money(policy.max_purchase, company.currency)}.",
            "minimum": settings.MINIMUM_PURCHASE,
            "form": form,
            "methods": selectors.payment_method_choices(company),
            "chosen_method": form["method"].value() or "card",
            "cards": list(selectors.saved_cards_for(company)),
            "purchases": list(selectors.purchases_for(company)[:HISTORY_SHOWN]),
            "stripe_ready": selectors.stripe_is_configured(),
            **auto_recharge_context(company, form=auto_recharge_form),
        }
        return render(self.request, "billing/credit.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(BuyCreditForm(initial={"method": "card"}))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = BuyCreditForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = services.purchase_create(
                    actor=self.actor,
                    company=self.company,
                    amount=data["amount"],
                    method=data["method"],
                    save_card=data["save_card"],
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                purchase = result.purchase
                if purchase.method == CreditPurchase.Method.BANK_WIRE:
                    return redirect("credit-purchase", id=purchase.public_id)
                return redirect("credit-pay", id=purchase.public_id)
        return self._render(form, status=400)


class AutoRechargeView(OncePostMixin, CreditView):
    """Saves the company auto-recharge from the credit page's form; a form with errors comes
    back on the credit page with every value as sent and each error under its field."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AutoRechargeForm(request.POST, company=self.company)
        if auto_recharge_save(actor=self.actor, company=self.company, form=form):
            messages.success(request, "Auto-recharge saved.")
            return redirect("credit")
        return self._render(BuyCreditForm(initial={"method": "card"}), status=400, auto_recharge_form=form)


class PurchaseDetailView(_CreditPage):
    """One purchase: its outcome, the wire instructions, or the 3-D Secure step. A card or PayPal
    purchase still open is checked with Stripe here (the browser came back from paying)."""

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        purchase = self.get_object_or_404(id)
        intent = None
        check_error = ""
        try:
            purchase, intent = services.purchase_sync(purchase=purchase)
        except ApplicationError as error:
            check_error = error.message
        requires_action = (
            purchase.status == CreditPurchase.Status.PENDING
            and intent is not None
            and intent.status == "requires_action"
        )
        context = {
            **self._common(),
            "purchase": purchase,
            "balance": company_balance(self.company),
            "wire_instructions": selectors.wire_instructions(purchase) if purchase.wire_reference else "",
            "bank_details": settings.BANK_WIRE_INSTRUCTIONS,
            "requires_action": requires_action,
            "processing": purchase.status == CreditPurchase.Status.PENDING
            and intent is not None
            and intent.status == "processing",
            "check_error": check_error,
            "expiry_hours": settings.CREDIT_PURCHASE_EXPIRY_HOURS,
            "wire_expiry_days": settings.WIRE_PURCHASE_EXPIRY_DAYS,
            "receipt_number": receipt_number(purchase),
            "stripe_config": _stripe_config(paymentClientSecret=intent.client_secret)
            if requires_action and intent
            else None,
        }
        return render(request, "billing/purchase_detail.html", context)


class PurchasePayView(_CreditPage):
    """Pay a card purchase (a new card in Stripe's form, or a saved card) or a PayPal purchase."""

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        purchase = self.get_object_or_404(id)
        if purchase.status != CreditPurchase.Status.PENDING or not purchase.is_stripe:
            return redirect("credit-purchase", id=purchase.public_id)
        if not self.tenancy.can(Capability.MANAGE_BILLING):
            return redirect("credit-purchase", id=purchase.public_id)
        # localstripe stands in for Stripe (STRIPE_API_BASE set): the page says which test
        # cards it knows and how its card form wants the expiry.
        context: dict[str, Any] = {
            **self._common(),
            "purchase": purchase,
            "local_stripe": bool(settings.STRIPE_API_BASE),
        }
        try:
            if purchase.method == CreditPurchase.Method.CARD:
                setup = services.purchase_card_form(purchase=purchase)
                context["cards"] = list(selectors.saved_cards_for(self.company))
                context["stripe_config"] = _stripe_config(setupClientSecret=setup.client_secret)
            else:
                purchase, intent = services.purchase_sync(purchase=purchase)
                if purchase.status != CreditPurchase.Status.PENDING or intent is None:
                    return redirect("credit-purchase", id=purchase.public_id)
                return_url = request.build_absolute_uri(reverse("credit-purchase", args=[purchase.public_id]))
                context["stripe_config"] = _stripe_config(
                    paymentClientSecret=intent.client_secret, returnUrl=return_url
                )
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("credit-purchase", id=purchase.public_id)
        return render(request, "billing/purchase_pay.html", context)

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        purchase = self.get_object_or_404(id)
        form = PayForm(request.POST)
        saved_card = None
        try:
            if not form.is_valid():
                raise ApplicationError("Choose a card.")
            if form.cleaned_data["saved_card"]:
                saved_card = (
                    selectors.saved_cards_for(self.company).filter(public_id=form.cleaned_data["saved_card"]).first()
                )
                if saved_card is None:
                    raise ApplicationError("Choose one of your company's saved cards.")
            elif not form.cleaned_data["setup_intent"]:
                raise ApplicationError("Enter the card's details.")
            result = services.purchase_pay(
                actor=self.actor,
                purchase=purchase,
                setup_intent=form.cleaned_data["setup_intent"] or None,
                saved_card=saved_card,
            )
        except ApplicationError as error:
            messages.error(request, error.message)
            if purchase.status == CreditPurchase.Status.PENDING:
                return redirect("credit-pay", id=purchase.public_id)
            return redirect("credit-purchase", id=purchase.public_id)
        if result.purchase.status == CreditPurchase.Status.SUCCEEDED:
            messages.success(
                request,
                f"Payment received: {format_money(result.purchase.amount, result.purchase.currency)} was added.",
            )
        return redirect("credit-purchase", id=purchase.public_id)


class PurchaseCancelView(_CreditPage):
    """The customer gives up a purchase awaiting payment; back to its page (a reload repeats
    nothing: a second cancel only says it is canceled already)."""

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        purchase = self.get_object_or_404(id)
        try:
            purchase = services.purchase_cancel(actor=self.actor, purchase=purchase)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"The purchase of {format_money(purchase.amount, purchase.currency)} was cancelled."
            )
        return redirect("credit-purchase", id=purchase.public_id)


class PurchaseReceiptView(_CreditPage):
    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        purchase = self.get_object_or_404(id)
        if not purchase.has_receipt:
            raise Http404("No receipt for this purchase.")
        response = HttpResponse(receipt_pdf(purchase), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="receipt-{receipt_number(purchase)}.pdf"'
        return response


class _CardPage(CompanyPageMixin, View):
    model = SavedPaymentMethod
    write_capability = Capability.MANAGE_BILLING


class CardDefaultView(_CardPage):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        card = self.get_object_or_404(id)
        payment_methods.payment_method_set_default(actor=self.actor, method=card)
        messages.success(request, f"{card} is now the default card.")
        return redirect("credit")


class CardRemoveView(_CardPage):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        card = self.get_object_or_404(id)
        try:
            payment_methods.payment_method_remove(actor=self.actor, method=card)
        except ApplicationError as error:
            messages.error(request, f"{card}: {error.message}")
        else:
            messages.success(request, f"{card} was removed.")
        return redirect("credit")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's events. No session or CSRF: the signature (STRIPE_WEBHOOK_SECRET) is the check."""
    try:
        event, fresh = webhooks.stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except clients.InvalidWebhook as error:
        logger.warning("Refused a Stripe webhook: %s", error)
        return JsonResponse({"detail": "Invalid payload or signature.", "code": "invalid_signature"}, status=400)
    if not fresh:
        return JsonResponse({"received": True, "duplicate": True})
    try:
        webhooks.stripe_event_process(event=event)
    except Exception:
        # Recorded as failed with the error; a non-2xx answer makes Stripe deliver it again.
        return JsonResponse({"detail": "The event could not be handled.", "code": "failed"}, status=500)
    return JsonResponse({"received": True})
