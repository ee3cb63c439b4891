from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.fields import TextField
from apps.rating import selectors
from apps.rating.call_policy import Refusal, call_policy
from apps.rating.models import BlockedPrefix, DestinationClass
from apps.sip_profiles.models import SipProfile


def _rate(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=6, **kwargs)


class RateLookupBlockedSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.ChoiceField(BlockedPrefix.Kind.choices)
    reason = TextField()


class RateLookupRateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    prefix = TextField(help_text="The longest prefix that matched, with +.")
    destination = TextField()
    country = TextField(help_text="ISO 3166 code; empty for ranges of no country.")
    destination_class = serializers.ChoiceField(DestinationClass.choices)
    currency = TextField()
    price_per_minute = _rate()
    connection_fee = _rate()
    first_increment = serializers.IntegerField(help_text="Seconds billed first.")
    next_increment = serializers.IntegerField(help_text="Seconds billed after the first increment.")
    deck = serializers.UUIDField(help_text="The rate deck in force.")
    deck_name = TextField(help_text="The deck's display name, e.g. “GBP rates from 1 Jan 2026”.")
    effective_from = serializers.DateTimeField(help_text="When that deck took effect.")


class RateLookupApi(CompanyScopedAPIView):
    """What a call to a number costs in the company's currency, by the longest matching
    prefix of the deck in force, or why the number may never be called."""

    # Decks are not company-owned: the answer comes from the selector, not get_queryset().
    filter_backends: list[Any] = []

    class FilterSerializer(serializers.Serializer):  # type: ignore[type-arg]
        number = TextField(
            max_length=40,
            help_text="E.164 (+442079460958), or as dialled in your company's country (020 7946 0958, 911).",
        )
        at = serializers.DateTimeField(
            required=False, help_text="Price with the deck in force at this time (ISO 8601); default now."
        )

        class Meta:
            ref_name = "RateLookupFilter"

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        number = TextField(help_text="E.164 when the number is valid, else as given.")
        callable = serializers.BooleanField(
            help_text="False for emergency, special-service, operator and premium-rate numbers."
        )
        blocked = RateLookupBlockedSerializer(allow_null=True, help_text="Why the number may never be called.")
        rate = RateLookupRateSerializer(allow_null=True, help_text="The matched rate, when the number is callable.")

    @extend_schema(
        summary="Look up a call's rate",
        description="What a call to `number` costs in the company's currency (per minute, connection fee, "
        "billing increments), by the longest matching prefix of the rate deck in force (or in force at `at`); "
        "or why the number may never be called (emergency, special-service, operator, premium-rate: "
        "`callable: false`). A number that is not valid is a 400 on `number`; no deck in force that prices it "
        "is a 404 `no_rate`.",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        company = self.company
        found = selectors.rate_lookup(
            number=data["number"], currency=company.currency, region=company.country.code, at=data.get("at")
        )
        if isinstance(found, selectors.Blocked):
            body = {
                "number": data["number"].strip(),
                "callable": False,
                "blocked": {"kind": found.kind, "reason": found.reason},
                "rate": None,
            }
        else:
            rate = found.rate
            body = {
                "number": found.number,
                "callable": True,
                "blocked": None,
                "rate": (
                    {
                        "prefix": f"+{rate.prefix}",
                        "destination": rate.destination,
                        "country": rate.country,
                        "destination_class": rate.destination_class,
                        "currency": rate.deck.currency,
                        "price_per_minute": rate.price_per_minute,
                        "connection_fee": rate.connection_fee,
                        "first_increment": rate.first_increment,
                        "next_increment": rate.next_increment,
                        "deck": rate.deck.public_id,
                        "deck_name": rate.deck.display_name,
                        "effective_from": rate.deck.effective_from,
                    }
                ),
            }
        return Response(self.OutputSerializer(body).data)


REFUSALS = [
    (Refusal.NONE, "Paid calls are allowed"),
    (Refusal.DELETED, "The profile was deleted"),
    (Refusal.SUSPENDED, "The profile is suspended"),
    (Refusal.SUSPENDED_FOR_BILLING, "The profile is suspended for an unpaid charge"),
    (Refusal.NO_BALANCE, "The profile balance is not positive"),
]


class SipProfileCallPolicyApi(CompanyScopedAPIView):
    """What the SIP edge lets a profile do right now: paid outbound calls, US calls on bundle
    minutes, inbound calls; and why paid calls are refused, when they are."""

    queryset = SipProfile.objects.all()

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True)

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        profile = serializers.UUIDField(source="public_id")
        paid_calls_allowed = serializers.BooleanField(
            help_text="Outbound calls charged to the balance: the profile is active and its balance is above zero."
        )
        bundle_calls_allowed = serializers.BooleanField(
            help_text="Outbound calls to US landlines and mobiles on bundle minutes, whatever the balance: "
            "the profile is active and the current bundle period has minutes left."
        )
        inbound_calls_allowed = serializers.BooleanField(
            help_text="Calls to the profile's Online Numbers and business accounts: the profile is active. "
            "Never depends on the balance."
        )
        balance = serializers.DecimalField(max_digits=16, decimal_places=4)
        currency = TextField()
        us_bundle_minutes_left = serializers.IntegerField(
            source="bundle_minutes_left", help_text="0 when there is no current bundle period or it is suspended."
        )
        bundle_period_ends_at = serializers.DateTimeField(source="bundle_period_end", allow_null=True)
        bundle_suspended = serializers.BooleanField(
            help_text="The current period's bundle charge is unpaid: its minutes cannot be used."
        )
        refusal = serializers.ChoiceField(REFUSALS, help_text="Why paid calls are refused; empty when allowed.")
        reason = TextField(help_text="The same, for a person; empty when paid calls are allowed.")
        checked_at = serializers.DateTimeField()

    @extend_schema(
        summary="Get a profile's call policy",
        description="What the SIP edge lets the profile do right now: paid outbound calls (active and a positive "
        "balance), US calls on bundle minutes, inbound calls; and why paid calls are refused, when they are.",
        responses={200: OutputSerializer, 404: ERROR},
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(self.OutputSerializer(call_policy(self.get_object())).data)
