"""Balances, allocations and statements in the API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.ledger import selectors
from apps.billing.ledger.filters import StatementFilter
from apps.billing.models import LedgerAccount, LedgerEntry
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.fields import TextField


class EntrySerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="transaction.public_id")
    date = serializers.DateTimeField(source="created_at")
    kind = TextField(source="transaction.kind")
    description = TextField(source="transaction.description")
    amount = serializers.DecimalField(max_digits=16, decimal_places=4)
    balance_after = serializers.DecimalField(max_digits=16, decimal_places=4)


class ProfileBalanceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    name = TextField()
    balance = serializers.DecimalField(max_digits=16, decimal_places=4)


class CreditApi(CompanyScopedAPIView):
    """The company balance and each SIP profile's balance."""

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        currency = TextField()
        company_balance = serializers.DecimalField(max_digits=16, decimal_places=4)
        profiles = ProfileBalanceSerializer(many=True, help_text="Every SIP profile with its balance, by name.")

    @extend_schema(
        summary="Get the balances",
        description="The company balance (credit bought, not yet allocated) and each live SIP profile's balance "
        "(what its calls are charged to), in the company's currency.",
        responses=OutputSerializer,
        operation_id="credit_balances",
    )
    def get(self, request: Request) -> Response:
        company = self.company
        balances = selectors.profile_balances(company)
        # The profile model through the account's foreign key: billing imports no product.
        profile_model = LedgerAccount._meta.get_field("sip_profile").related_model
        profiles = profile_model._default_manager.for_company(company).live().order_by("name")  # type: ignore[union-attr]
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


class StatementApi(CompanyScopedAPIView):
    """Statement entries: date, description, amount and the balance after each."""

    # Ledger entries are reached through their account's company: the list comes from the
    # selector, never from get_queryset(); `queryset` only names the model for the schema.
    queryset = LedgerEntry.objects.none()
    filterset_class = StatementFilter

    @extend_schema(
        summary="List statement entries",
        description="The company balance's statement, newest first: each entry's date, kind, description, amount "
        "(+ credit, - debit) and the balance after it; filter by `month` (YYYY-MM) or `kind`, or read a SIP "
        "profile's balance with `profile`.",
        responses={200: EntrySerializer(many=True), 400: ERROR},
        operation_id="ledger_list",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(selectors.statement_entries(company=self.company)))
        return self.get_paginated_response(EntrySerializer(page, many=True).data)
