"""A SIP profile's credit in the API: its balance and history, allocating or taking back credit,
and its auto-recharge. The profile owns these endpoints; billing provides the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing import idempotency
from apps.billing.ledger import selectors
from apps.billing.ledger.allocations import credit_move, profile_balance
from apps.billing.ledger.api import EntrySerializer
from apps.billing.money import AMOUNT_QUANTUM, amount_field
from apps.billing.recharge import profile as profile_recharge
from apps.billing.recharge.api import _SettingsInput, _StateOutput
from apps.billing.recharge.selectors import profile_auto_recharge_state
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR, created
from apps.core.fields import TextField
from apps.sip_profiles.models import SipProfile


class ProfileCreditApi(CompanyScopedAPIView):
    """A profile's balance and allocation history; allocate or take back credit."""

    queryset = SipProfile.objects.all()
    write_capability = Capability.MANAGE_BILLING

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        action = serializers.ChoiceField(["allocate", "take_back"])
        amount = amount_field(quantum=AMOUNT_QUANTUM, help_text="Moved from the company balance, or back to it.")

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        profile = serializers.UUIDField()
        currency = TextField()
        balance = serializers.DecimalField(max_digits=16, decimal_places=4)
        history = EntrySerializer(many=True)

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True)

    def _output(self, profile: SipProfile) -> dict[str, Any]:
        history = selectors.allocation_history(company=self.company, profile=profile)[:50]
        return self.OutputSerializer(
            {
                "profile": profile.public_id,
                "currency": self.company.currency,
                "balance": profile_balance(profile),
                "history": history,
            }
        ).data

    @extend_schema(
        summary="Get a profile's credit",
        description="The profile's balance (what calls are charged to) and its latest 50 allocations.",
        responses=OutputSerializer,
        operation_id="sip_profile_credit",
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(self._output(self.get_object()))

    @extend_schema(
        summary="Allocate or take back credit",
        description="`allocate` moves `amount` from the company balance to the profile; `take_back` moves it "
        "back. Either is refused with a 400 `insufficient_funds` on `amount` when the balance it comes from "
        "does not hold it. "
        "Answers the profile's credit after the move.",
        request=InputSerializer,
        responses={201: OutputSerializer},
        parameters=[idempotency.HEADER_PARAMETER],
        operation_id="sip_profile_credit_move",
    )
    def post(self, request: Request, id: str) -> Response:
        profile = self.get_object()
        return idempotency.idempotent_response(
            request=request,
            company=self.company,
            endpoint=f"sip-profiles/{profile.public_id}/credit",
            run=lambda claim: self._move(profile),
            atomic=True,
        )

    def _move(self, profile: SipProfile) -> Response:
        serializer = self.InputSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        credit_move(
            actor=self.actor,
            profile=profile,
            action=serializer.validated_data["action"],
            amount=serializer.validated_data["amount"],
            request_key=(self.request.headers.get(idempotency.HEADER) or "").strip() or None,
        )
        return created(self._output(profile))


class ProfileAutoRechargeApi(CompanyScopedAPIView):
    """A SIP profile's auto-recharge: credit allocated from the company balance when the
    profile balance falls below the threshold."""

    queryset = SipProfile.objects.all()
    write_capability = Capability.MANAGE_BILLING

    class InputSerializer(_SettingsInput):
        pass

    class OutputSerializer(_StateOutput):
        pass

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True).select_related("company")

    @extend_schema(
        summary="Get a profile's auto-recharge",
        description="Whether credit is allocated automatically from the company balance when the profile "
        "balance falls below the threshold, and how much was this month.",
        responses=OutputSerializer,
        operation_id="sip_profile_auto_recharge_retrieve",
    )
    def get(self, request: Request, id: Any) -> Response:
        return Response(self.OutputSerializer(profile_auto_recharge_state(self.get_object())).data)

    @extend_schema(
        summary="Set a profile's auto-recharge",
        description="Set all four settings at once. When on, `amount` is allocated from the company balance "
        "each time the profile balance falls below `threshold`, up to `monthly_limit` a calendar month (UTC); "
        "`monthly_limit` is at least `amount`.",
        request=InputSerializer,
        responses={200: OutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
        operation_id="sip_profile_auto_recharge_update",
    )
    def put(self, request: Request, id: Any) -> Response:
        profile = self.get_object()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile_recharge.profile_auto_recharge_update(actor=self.actor, profile=profile, **serializer.validated_data)
        return Response(self.OutputSerializer(profile_auto_recharge_state(profile)).data)
