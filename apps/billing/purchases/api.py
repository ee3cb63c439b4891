"""Buying credit and saved cards in the API."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing import idempotency
from apps.billing.models import CreditPurchase, IdempotentRequest, SavedPaymentMethod
from apps.billing.money import amount_field
from apps.billing.purchases import payment_methods, selectors, services
from apps.billing.purchases.filters import PurchaseFilter
from apps.billing.purchases.receipts import receipt_number, receipt_pdf
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.exceptions import ApplicationError
from apps.core.fields import TextField


def money_field(**kwargs: Any) -> serializers.DecimalField:
    """An amount of what is bought or set (whole cents) in an answer."""
    return serializers.DecimalField(max_digits=14, decimal_places=2, **kwargs)


class CardSerializer(serializers.Serializer):  # type: ignore[type-arg]
    brand = TextField()
    last4 = TextField()


class PurchaseOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    amount = money_field(help_text="What was asked for.")
    currency = TextField()
    method = serializers.ChoiceField(CreditPurchase.Method.choices)
    status = serializers.ChoiceField(CreditPurchase.Status.choices)
    amount_received = money_field(allow_null=True, help_text="What was credited: paid at Stripe, or arrived by wire.")
    wire_reference = TextField(allow_null=True, help_text="Bank wire: write it on the transfer.")
    wire_instructions = serializers.SerializerMethodField(help_text="Bank wire: account details, amount, reference.")
    card = serializers.SerializerMethodField()
    failure_message = TextField()
    receipt_url = serializers.SerializerMethodField(help_text="The PDF receipt (API), once paid.")
    created_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)

    def get_wire_instructions(self, purchase: CreditPurchase) -> str | None:
        return selectors.wire_instructions(purchase) if purchase.wire_reference else None

    @extend_schema_field(CardSerializer(allow_null=True))
    def get_card(self, purchase: CreditPurchase) -> dict[str, str] | None:
        if not purchase.card_last4:
            return None
        return {"brand": purchase.card_brand, "last4": purchase.card_last4}

    def get_receipt_url(self, purchase: CreditPurchase) -> str | None:
        if not purchase.has_receipt:
            return None
        return reverse("v1:credit-purchase-receipt", args=[purchase.public_id])


class PurchaseListApi(CompanyScopedAPIView):
    """The company's credit purchases, newest first; buy credit."""

    queryset = CreditPurchase.objects.all()
    write_capability = Capability.MANAGE_BILLING
    filterset_class = PurchaseFilter

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        amount = amount_field(help_text='In the company\'s currency, e.g. "50" or "49.99".')
        method = serializers.ChoiceField(CreditPurchase.Method.choices)
        payment_method = serializers.UUIDField(
            required=False,
            allow_null=True,
            default=None,
            help_text="Card only: the id of a saved card to charge now instead of returning a client secret.",
        )

    class OutputSerializer(PurchaseOutputSerializer):
        client_secret = TextField(
            allow_null=True,
            help_text="Card or PayPal: the PaymentIntent's client secret for Stripe.js "
            "(confirmCardPayment, confirmPayPalPayment, or 3-D Secure when `requires_action`).",
        )
        requires_action = serializers.BooleanField(help_text="The payment needs the person, through Stripe.js.")

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.order_by("-created_at", "-id")

    @extend_schema(
        summary="List credit purchases",
        description="The company's credit purchases, newest first, whatever their status; filter by status and method.",
        responses={200: PurchaseOutputSerializer(many=True), 400: ERROR},
        operation_id="credit_purchases_list",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(PurchaseOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Buy credit",
        request=InputSerializer,
        parameters=[idempotency.HEADER_PARAMETER],
        responses={201: OutputSerializer, 400: ERROR, 402: ERROR, 403: ERROR, 409: ERROR, 502: ERROR},
        operation_id="credit_purchases_create",
        description=(
            "Buy credit: at least the minimum purchase and at most the company's limit per purchase, by a "
            "payment method its purchase policy offers (bank wire for verified companies only): 400 with "
            "codes `below_minimum`, `above_limit`, `method_not_allowed`.\n\n"
            "* `card` or `paypal`: a pending purchase and the PaymentIntent's `client_secret`; confirm it "
            "with Stripe.js. The balance is credited once Stripe reports the payment succeeded.\n"
            "* `card` with `payment_method` (a saved card): charged now; `status` is `succeeded`, "
            "`failed`, or `pending` with `requires_action` (3-D Secure through Stripe.js).\n"
            "* `bank_wire`: a pending purchase with its `wire_reference` and `wire_instructions`; credited "
            "with the amount that arrives, when our staff confirm it.\n\n"
            "Send an `Idempotency-Key` so that a retried request cannot start a second purchase."
        ),
    )
    def post(self, request: Request) -> Response:
        return idempotency.idempotent_response(
            request=request, company=self.company, endpoint="credit/purchases", run=self._create, resume=self._resume
        )

    def _create(self, claim: idempotency.Claim | None) -> Response:
        serializer = self.InputSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        saved_card = None
        if data["payment_method"] is not None:
            saved_card = selectors.saved_cards_for(self.company).filter(public_id=data["payment_method"]).first()
            if saved_card is None:
                raise ApplicationError("No such saved card.", field="payment_method")
        result = services.purchase_create(
            actor=self.actor,
            company=self.company,
            amount=data["amount"],
            method=data["method"],
            saved_card=saved_card,
            on_created=claim.bind_purchase if claim is not None else None,
        )
        purchase = CreditPurchase.objects.get(pk=result.purchase.pk)
        body = {
            **PurchaseOutputSerializer(purchase).data,
            "client_secret": result.client_secret or None,
            "requires_action": result.requires_action,
        }
        return Response(body, status=status.HTTP_201_CREATED)

    def _resume(self, claim: IdempotentRequest) -> Response:
        """The answer for a retry whose first request started a purchase and never answered:
        that purchase as Stripe has it now. Nothing is created or charged again."""
        purchase = CreditPurchase.objects.select_related("company").get(pk=claim.purchase_id)
        purchase, intent = services.purchase_sync(purchase=purchase)
        open_intent = purchase.status == CreditPurchase.Status.PENDING and intent is not None
        needs_person = open_intent and intent is not None and intent.status != "processing"
        body = {
            **PurchaseOutputSerializer(purchase).data,
            "client_secret": intent.client_secret if needs_person and intent is not None else None,
            "requires_action": needs_person,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class PurchaseDetailApi(CompanyScopedAPIView):
    queryset = CreditPurchase.objects.all()

    @extend_schema(
        summary="Get a credit purchase",
        responses={200: PurchaseOutputSerializer, 404: ERROR, 502: ERROR},
        operation_id="credit_purchases_retrieve",
        description="One purchase. A card or PayPal purchase still awaiting payment is checked with Stripe "
        "first, so this shows a payment the moment Stripe has it.",
    )
    def get(self, request: Request, id: str) -> Response:
        purchase, _ = services.purchase_sync(purchase=self.get_object())
        return Response(PurchaseOutputSerializer(purchase).data)


class PurchaseCancelApi(CompanyScopedAPIView):
    queryset = CreditPurchase.objects.all()
    write_capability = Capability.MANAGE_BILLING

    @extend_schema(
        request=None,
        responses={200: PurchaseOutputSerializer, 403: ERROR, 404: ERROR, 409: ERROR, 502: ERROR},
        operation_id="credit_purchases_cancel",
        summary="Cancel a purchase awaiting payment",
        description="Give up a purchase still awaiting payment (or whose payment failed): a card or PayPal "
        "payment is canceled at Stripe, so it can no longer be paid, and the purchase is `canceled`. 409 "
        "`not_cancellable` when it is no longer awaiting payment; 409 `already_paid` when Stripe took the "
        "payment first (the purchase is then credited). Unpaid purchases also expire on their own: card "
        "and PayPal after CREDIT_PURCHASE_EXPIRY_HOURS, bank wires after WIRE_PURCHASE_EXPIRY_DAYS.",
    )
    def post(self, request: Request, id: str) -> Response:
        purchase = services.purchase_cancel(actor=self.actor, purchase=self.get_object())
        return Response(PurchaseOutputSerializer(purchase).data)


class PurchaseReceiptApi(CompanyScopedAPIView):
    queryset = CreditPurchase.objects.all()

    @extend_schema(
        summary="Download a purchase's receipt",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The receipt, a PDF file."),
            404: ERROR,
        },
        operation_id="credit_purchases_receipt",
        description="The PDF receipt of a paid (or later refunded) purchase, as an attachment. A purchase that "
        "was not paid has none: 404.",
    )
    def get(self, request: Request, id: str) -> HttpResponse:
        purchase = self.get_object()
        if not purchase.has_receipt:
            raise NotFound("No receipt: this purchase was not paid.")
        response = HttpResponse(receipt_pdf(purchase), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="receipt-{receipt_number(purchase)}.pdf"'
        return response


class PaymentMethodOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    brand = TextField()
    last4 = TextField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    is_default = serializers.BooleanField(help_text="The card auto-recharge charges.")
    created_at = serializers.DateTimeField()


class _PaymentMethodBase(CompanyScopedAPIView):
    queryset = SavedPaymentMethod.objects.all()
    write_capability = Capability.MANAGE_BILLING

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.order_by("-is_default", "-created_at", "-id")


class PaymentMethodListApi(_PaymentMethodBase):
    """Cards saved for later payments (saved when paying by card on the credit page). Only the
    brand, last four digits and expiry are known to us; the card itself is held by Stripe."""

    @extend_schema(
        summary="List saved cards",
        responses=PaymentMethodOutputSerializer(many=True),
        operation_id="payment_methods_list",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PaymentMethodOutputSerializer(page, many=True).data)


class PaymentMethodDetailApi(_PaymentMethodBase):
    @extend_schema(
        summary="Get a saved card",
        description="One saved card: brand, last four digits, expiry and whether auto-recharge charges it.",
        responses={200: PaymentMethodOutputSerializer, 404: ERROR},
        operation_id="payment_methods_retrieve",
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(PaymentMethodOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Remove a saved card",
        responses={204: OpenApiResponse(description="Removed."), 403: ERROR, 404: ERROR, 502: ERROR},
        operation_id="payment_methods_destroy",
        description="Remove the card: it is detached from the company at Stripe and can no longer be charged.",
    )
    def delete(self, request: Request, id: str) -> Response:
        payment_methods.payment_method_remove(actor=self.actor, method=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class PaymentMethodDefaultApi(_PaymentMethodBase):
    @extend_schema(
        summary="Make a card the default",
        request=None,
        responses={200: PaymentMethodOutputSerializer, 403: ERROR, 404: ERROR},
        operation_id="payment_methods_make_default",
        description="Make this the card auto-recharge charges (when its settings name no card). Send no body.",
    )
    def post(self, request: Request, id: str) -> Response:
        card = payment_methods.payment_method_set_default(actor=self.actor, method=self.get_object())
        return Response(PaymentMethodOutputSerializer(card).data)
