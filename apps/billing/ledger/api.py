"""Balances, allocations and statements in the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.ledger import selectors
from apps.billing.ledger.filters import StatementFilter
from apps.billing.models import LedgerAccount, LedgerEntry
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.fields import TextField, UtcDateTimeField, decimal_text, iso_datetime
from apps.core.keyset import keyset_api_page, keyset_page_serializer, keyset_parameters


# The schema of a statement entry; the list writes each one with entry_output.
class EntrySerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="transaction.public_id")
    date = UtcDateTimeField(source="created_at")
    kind = TextField(source="transaction.kind")
    description = TextField(source="transaction.description")
    amount = serializers.DecimalField(max_digits=16, decimal_places=4)
    balance_after = serializers.DecimalField(max_digits=16, decimal_places=4)


def entry_output(row: dict[str, Any]) -> dict[str, Any]:
    """EntrySerializer's output, from a row of selectors.statement_values."""
    return {
        "id": str(row["transaction__public_id"]),
        "date": iso_datetime(row["created_at"]),
        "kind": row["transaction__kind"],
        "description": row["transaction__description"],
        "amount": decimal_text(row["amount"]),
        "balance_after": decimal_text(row["balance_after"]),
    }


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
        company_balance, profile_balances = selectors.balances(company)
        # The profile model through the account's foreign key: billing imports no product.
        profile_model = LedgerAccount._meta.get_field("sip_profile").related_model
        profiles = (
            profile_model._default_manager.for_company(company)  # type: ignore[union-attr]
            .live()
            .order_by("name")
            .values_list("pk", "public_id", "name")
        )
        zero = Decimal("0.0000")
        return Response(
            {
                "currency": company.currency,
                "company_balance": decimal_text(company_balance),
                "profiles": [
                    {"id": str(public_id), "name": name, "balance": decimal_text(profile_balances.get(pk, zero))}
                    for pk, public_id, name in profiles
                ],
            }
        )


class StatementApi(CompanyScopedAPIView):
    """Statement entries: date, description, amount and the balance after each."""

    # Ledger entries are reached through their account's company: the list comes from the
    # selector, never from get_queryset(); `queryset` only names the model for the schema.
    queryset = LedgerEntry.objects.none()
    filterset_class = StatementFilter
    pagination_class = None

    @extend_schema(
        summary="List statement entries",
        description="The company balance's statement, newest first: each entry's date, kind, description, amount "
        "(+ credit, - debit) and the balance after it; filter by `month` (YYYY-MM) or `kind`, or read a SIP "
        "profile's balance with `profile`. Paged by cursor: follow `next` (older entries) and `previous` (newer); "
        "a deep page costs what the first does and no page counts the entries. `page` is refused (400): this "
        "list has no page numbers.",
        parameters=keyset_parameters(),
        responses={
            200: keyset_page_serializer(
                "StatementPage", EntrySerializer(many=True), older="older entries", newer="newer entries"
            ),
            400: ERROR,
        },
        operation_id="ledger_list",
        filters=True,
    )
    def get(self, request: Request) -> Response:
        entries = selectors.statement_values(self.filter_queryset(selectors.statement_entries(company=self.company)))
        # By id alone: the ledger is append-only, so ids grow with time, on the (account, id) index.
        page, links = keyset_api_page(request, entries, time_field=None, refuse_page_numbers=True)
        return Response({**links, "results": [entry_output(row) for row in page.rows]})
