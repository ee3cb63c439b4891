"""Balances, allocations and statements in the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing import idempotency, selectors
from apps.billing.allocations import credit_move, profile_balance
from apps.billing.models import LedgerTransaction
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import created
from apps.sip_profiles.models import SipProfile


class EntrySerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="transaction.public_id")
    date = serializers.DateTimeField(source="created_at")
    kind = serializers.CharField(source="transaction.kind")
    description = serializers.CharField(source="transaction.description")
    amount = serializers.DecimalField(max_digits=16, decimal_places=4)
    balance_after = serializers.DecimalField(max_digits=16, decimal_places=4)


class ProfileBalanceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    name = serializers.CharField()
    balance = serializers.DecimalField(max_digits=16, decimal_places=4)


class CreditApi(CompanyScopedAPIView):
    """The company balance and each SIP profile's balance."""

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        currency = serializers.CharField()
        company_balance = serializers.DecimalField(max_digits=16, decimal_places=4)
        profiles = ProfileBalanceSerializer(many=True, help_text="Every SIP profile with its balance, by name.")

    @extend_schema(responses=OutputSerializer, operation_id="credit_balances")
    def get(self, request: Request) -> Response:
        company = self.company
        balances = selectors.profile_balances(company)
        profiles = SipProfile.objects.for_company(company).live().order_by("name")
        return Response(
            self.OutputSerializer(
                {
                    "currency": company.currency,
                    "company_balance": selectors.company_balance(company),
                    "profiles": [
                        {"id": str(p.public_id), "name": p.name, "balance": str(balances.get(p.pk, "0.0000"))}
                        for p in profiles
                    ],
                }
            ).data
        )


class ProfileCreditApi(CompanyScopedAPIView):
    """A profile's balance and allocation history; allocate or take back credit."""

    queryset = SipProfile.objects.all()
    write_capability = Capability.MANAGE_BILLING

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        action = serializers.ChoiceField(["allocate", "take_back"])
        amount = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=0)

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        profile = serializers.UUIDField()
        currency = serializers.CharField()
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

    @extend_schema(responses=OutputSerializer, operation_id="sip_profile_credit")
    def get(self, request: Request, id: str) -> Response:
        return Response(self._output(self.get_object()))

    @extend_schema(
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


class StatementApi(CompanyScopedAPIView):
    """Statement entries: date, description, amount and the balance after each."""

    # The filters are read by selectors.statement_entries(), which validates them.
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[
            OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM"),
            OpenApiParameter("profile", OpenApiTypes.UUID, description="A SIP profile's balance instead."),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=LedgerTransaction.Kind.values),
        ],
        responses=EntrySerializer(many=True),
        operation_id="ledger_list",
    )
    def get(self, request: Request) -> Response:
        entries = selectors.statement_entries(self.company, request.query_params)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(EntrySerializer(page, many=True).data)
