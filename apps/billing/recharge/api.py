"""Auto-recharge settings in the API: the company's (a SIP profile's is in apps.sip_profiles.credit_api)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.money import amount_field
from apps.billing.purchases import selectors as purchase_selectors
from apps.billing.purchases.api import money_field
from apps.billing.recharge import company as company_recharge
from apps.billing.recharge.selectors import auto_recharge_state
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.exceptions import ApplicationError
from apps.core.fields import TextField


class _SettingsInput(serializers.Serializer):  # type: ignore[type-arg]
    enabled = serializers.BooleanField()
    amount = amount_field(help_text='Charged (or allocated) each time, e.g. "50".')
    threshold = amount_field(help_text="Recharge when the balance falls below this (0 or more).")
    monthly_limit = amount_field(help_text="At most this much per calendar month (UTC); at least the amount.")


class _StateOutput(serializers.Serializer):  # type: ignore[type-arg]
    enabled = serializers.BooleanField()
    amount = money_field(allow_null=True)
    threshold = money_field(allow_null=True)
    monthly_limit = money_field(allow_null=True)
    currency = TextField()
    month = serializers.DateField(help_text="The first day of the current month.")
    month_total = money_field(help_text="Recharged this month (including a recharge in progress).")
    consecutive_failures = serializers.IntegerField()
    last_failure_at = serializers.DateTimeField(allow_null=True)
    last_failure_message = TextField()


class AutoRechargeApi(CompanyScopedAPIView):
    """The company auto-recharge: a saved card charged off-session when the balance falls below
    the threshold, at most once per crossing and up to the monthly limit."""

    write_capability = Capability.MANAGE_BILLING

    class InputSerializer(_SettingsInput):
        payment_method = serializers.UUIDField(
            required=False, allow_null=True, default=None, help_text="A saved card's id; omit for the default card."
        )

    class OutputSerializer(_StateOutput):
        payment_method = serializers.UUIDField(
            source="payment_method.public_id", allow_null=True, help_text="None: the default card."
        )
        in_flight = serializers.BooleanField(help_text="A recharge is being charged now.")
        disabled_reason = TextField(help_text="Why auto-recharge switched itself off, if it did.")

    def _state(self) -> Response:
        return Response(self.OutputSerializer(auto_recharge_state(self.company)).data)

    @extend_schema(
        summary="Get the company auto-recharge",
        description="The company auto-recharge settings and state: this month's total, failures, and whether "
        "a recharge is being charged now.",
        responses=OutputSerializer,
        operation_id="credit_auto_recharge_retrieve",
    )
    def get(self, request: Request) -> Response:
        return self._state()

    @extend_schema(
        summary="Set the company auto-recharge",
        request=InputSerializer,
        responses={200: OutputSerializer, 400: ERROR, 403: ERROR},
        operation_id="credit_auto_recharge_update",
        description=(
            "Set the company auto-recharge. `amount` is at least the minimum purchase and at most the "
            "company's limit per purchase; `monthly_limit` is at least `amount`; turning it on needs a "
            "saved card. Saving re-arms it: a balance already below the threshold is recharged by the "
            "next periodic check."
        ),
    )
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        card = None
        if data["payment_method"] is not None:
            card = purchase_selectors.saved_cards_for(self.company).filter(public_id=data["payment_method"]).first()
            if card is None:
                raise ApplicationError("Choose one of your company's saved cards.", field="payment_method")
        company_recharge.auto_recharge_update(
            actor=self.actor,
            company=self.company,
            enabled=data["enabled"],
            amount=data["amount"],
            threshold=data["threshold"],
            monthly_limit=data["monthly_limit"],
            payment_method=card,
        )
        return self._state()
