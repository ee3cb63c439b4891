from __future__ import annotations

from typing import Any

from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.quotes import QUOTE_PARAMETER, QuoteSerializer, or_quote, wants_quote
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR, created
from apps.core.exceptions import ApplicationError
from apps.core.fields import TextField
from apps.numbers import selectors, services
from apps.numbers.filters import AvailableNumberFilter, NumberSubscriptionFilter
from apps.numbers.models import TERMS, NumberSubscription, OnlineNumber


def _price(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=10, decimal_places=4, **kwargs)


class NumberOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    number = TextField(source="number.number", help_text="E.164.")
    country = CountryField(source="number.country")
    area = TextField(source="number.area")
    type = serializers.ChoiceField(OnlineNumber.Type.choices, source="number.number_type")
    months = serializers.ChoiceField(TERMS, help_text="The term: each period lasts this many months.")
    auto_renew = serializers.BooleanField()
    price = _price(help_text="Per period, fixed when the number was bought.")
    currency = TextField()
    status = serializers.ChoiceField(NumberSubscription.Status.choices)
    current_period_start = serializers.DateTimeField()
    current_period_end = serializers.DateTimeField(help_text="Renewed or ended at this time.")
    ended_at = serializers.DateTimeField(allow_null=True)
    business_account = serializers.UUIDField(
        source="business_account.public_id", allow_null=True, default=None, help_text="Calls to the number reach it."
    )
    business_account_name = TextField(source="business_account.name", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class AvailableNumberListApi(CompanyScopedAPIView):
    """Numbers in stock a company may buy, priced in its currency."""

    # Stock is not company-owned: the list comes from the selector, never from get_queryset()
    # (OnlineNumber has no for_company); `queryset` only names the model for the schema.
    queryset = OnlineNumber.objects.none()
    filterset_class = AvailableNumberFilter

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        id = serializers.UUIDField(source="public_id")
        number = TextField(help_text="E.164.")
        country = CountryField()
        area = TextField()
        type = serializers.ChoiceField(OnlineNumber.Type.choices, source="number_type")
        currency = TextField()
        price_3_months = _price()
        price_12_months = _price()

    @extend_schema(
        summary="List numbers for sale",
        description="Online Numbers in stock that the company may buy, with the price of a 3- and a 12-month "
        "term in its currency; filter by country, area, digits and type.",
        responses={200: OutputSerializer(many=True), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        queryset = self.filter_queryset(selectors.available_numbers())
        page = self.paginate_queryset(queryset)
        currency = self.company.currency
        rows = [
            {
                "public_id": stock.public_id,
                "number": str(stock.number),
                "country": stock.country,
                "area": stock.area,
                "number_type": stock.number_type,
                "currency": currency,
                "price_3_months": stock.price(currency=currency, months=3),
                "price_12_months": stock.price(currency=currency, months=12),
            }
            for stock in page or []
        ]
        return self.get_paginated_response(self.OutputSerializer(rows, many=True).data)


class _NumberBase(CompanyScopedAPIView):
    """A company's Online Number: its term, price, period and the business account it rings."""

    queryset = NumberSubscription.objects.all()
    write_capability = Capability.MANAGE_SERVICE

    def scope_queryset(self, queryset: Any) -> Any:
        return selectors.with_relations(queryset)


class NumberListApi(_NumberBase):
    """The company's Online Numbers (active first, then ended ones); buy one."""

    filterset_class = NumberSubscriptionFilter

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        number = TextField(
            max_length=40, help_text="E.164 (+442079460958), or national in your company's country (020 7946 0958)."
        )
        months = serializers.ChoiceField(TERMS)
        auto_renew = serializers.BooleanField(required=False, default=True)
        business_account = serializers.UUIDField(
            required=False, allow_null=True, default=None, help_text="A business account to route the calls to."
        )

    @extend_schema(
        summary="List the company's numbers",
        description="The company's Online Numbers, active first, then ended ones; filter by status and auto-renewal.",
        responses={200: NumberOutputSerializer(many=True), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(NumberOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Buy a number",
        request=InputSerializer,
        parameters=[QUOTE_PARAMETER],
        responses={201: NumberOutputSerializer, 200: QuoteSerializer, 400: ERROR, 403: ERROR, 409: ERROR},
        description=(
            "Buy an available number for 3 or 12 months; the first period is charged now. "
            "A number is held by one company at a time, so a retried request cannot buy it twice: "
            "it gets 409 with code `already_yours`. Someone else's number is 409 `not_available`. "
            "With `?quote=1`: 200 with what the purchase would charge, buying nothing."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if wants_quote(request):
            quote = services.number_buy_quote(company=self.company, number=data["number"], months=int(data["months"]))
            return Response(QuoteSerializer(quote.as_dict()).data)
        subscription = services.number_buy(
            actor=self.actor,
            company=self.company,
            number=data["number"],
            months=int(data["months"]),
            auto_renew=data["auto_renew"],
            business_account=selectors.business_account_for(self.company, data["business_account"]),
        )
        return created(NumberOutputSerializer(self.get_queryset().get(pk=subscription.pk)).data)


class NumberDetailApi(_NumberBase):
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        business_account = serializers.UUIDField(
            required=False, allow_null=True, help_text="Route the calls to this business account; null unassigns."
        )
        auto_renew = serializers.BooleanField(required=False)

    @extend_schema(
        summary="Get a number",
        description="One of the company's Online Numbers: its term, price, period and the business account it "
        "rings; ended numbers stay readable.",
        responses={200: NumberOutputSerializer, 404: ERROR},
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(NumberOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Change a number",
        request=InputSerializer,
        parameters=[QUOTE_PARAMETER],
        responses={200: or_quote(NumberOutputSerializer, name="NumberOrQuote"), 400: ERROR, 403: ERROR, 404: ERROR},
        description="Assign the number to a business account (null unassigns) and/or switch auto-renewal. "
        "Both changes are made together or not at all; an ended number cannot be changed (400 `ended`). "
        "With `?quote=1`: 200 with a Quote of the next renewal (charged at the end of the current period, when "
        "auto-renewal is on), changing nothing.",
    )
    def patch(self, request: Request, id: str) -> Response:
        subscription = self.get_object()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if wants_quote(request):
            if subscription.status != NumberSubscription.Status.ACTIVE:
                raise ApplicationError(f"{subscription.number.number} has ended: it does not renew.", code="ended")
            return Response(QuoteSerializer(services.number_renewal_quote(subscription=subscription).as_dict()).data)
        changes: dict[str, Any] = {}
        if "business_account" in data:
            changes["business_account"] = selectors.business_account_for(self.company, data["business_account"])
        if "auto_renew" in data:
            changes["auto_renew"] = data["auto_renew"]
        services.number_update(actor=self.actor, subscription=subscription, **changes)
        return Response(NumberOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Release a number",
        responses={204: None, 400: ERROR, 403: ERROR, 404: ERROR},
        description="Release the number now: it stops receiving calls and is no longer presented as caller ID. "
        "The rest of the period is not refunded; the number spends 30 days in quarantine. It stays readable "
        "with status `ended`; releasing it again is a 400 `ended`.",
    )
    def delete(self, request: Request, id: str) -> Response:
        services.number_release(actor=self.actor, subscription=self.get_object())
        return Response(status=204)
