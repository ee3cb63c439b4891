"""A SIP profile's US minute bundles in the API: what it holds, this period's minutes, buy or cancel."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing import idempotency
from apps.billing.quotes import QUOTE_PARAMETER, QuoteSerializer, or_quote, wants_quote
from apps.bundles.selectors import BundleSummary, bundle_summary
from apps.bundles.services import bundles_buy, bundles_buy_quote, bundles_cancel, bundles_cancel_quote
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.fields import TextField
from apps.sip_profiles.models import MAX_CHANNELS, SipProfile


class BundlePeriodSerializer(serializers.Serializer):  # type: ignore[type-arg]
    start = serializers.DateTimeField(source="period_start")
    end = serializers.DateTimeField(source="period_end", help_text="Unused minutes expire then.")
    bundles = serializers.IntegerField(help_text="The most bundles that gave minutes in this period.")
    minutes_included = serializers.IntegerField()
    minutes_used = serializers.IntegerField()
    minutes_left = serializers.IntegerField(help_text="0 while suspended.")
    percent_used = serializers.IntegerField()
    suspended = serializers.BooleanField(
        help_text="A bundle charge of this period is unpaid after its grace period: US calls are charged at the "
        "standard rate until it is paid."
    )


class ProfileBundlesApi(CompanyScopedAPIView):
    """A profile's US minute bundles: 5,000 minutes a month each to US landlines and mobiles."""

    queryset = SipProfile.objects.all()
    write_capability = Capability.MANAGE_SERVICE

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        action = serializers.ChoiceField(["buy", "cancel"])
        count = serializers.IntegerField(min_value=1, max_value=MAX_CHANNELS)

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        profile = serializers.UUIDField(source="profile_id")
        bundles = serializers.IntegerField(help_text="Bundles held; they renew on the profile's renewal day.")
        max_bundles = serializers.IntegerField(help_text="At most one bundle per channel.")
        minutes_per_bundle = serializers.IntegerField()
        currency = TextField()
        monthly_price = serializers.DecimalField(
            max_digits=12, decimal_places=4, allow_null=True, help_text="Per bundle and month."
        )
        minutes_included = serializers.IntegerField(help_text="This period's minutes (0 without a period).")
        minutes_used = serializers.IntegerField()
        minutes_left = serializers.IntegerField(help_text="What US calls can still use now (0 while suspended).")
        suspended = serializers.BooleanField()
        period = BundlePeriodSerializer(allow_null=True, help_text="The current period, if the profile has one.")
        renews_at = serializers.DateTimeField(
            source="period_end", help_text="The end of the current period: the next renewal."
        )
        minutes_if_bought_now = serializers.IntegerField(help_text="What one bundle bought now adds (prorated).")
        price_if_bought_now = serializers.DecimalField(
            max_digits=12, decimal_places=4, allow_null=True, help_text="What one bundle bought now costs (prorated)."
        )

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True).select_related("company")

    def _output(self, profile: SipProfile) -> dict[str, Any]:
        summary: BundleSummary = bundle_summary(profile=profile)
        data = {
            "profile_id": profile.public_id,
            "bundles": summary.bundles,
            "max_bundles": summary.max_bundles,
            "minutes_per_bundle": summary.minutes_per_bundle,
            "currency": summary.currency,
            "monthly_price": summary.monthly_price,
            "minutes_included": summary.minutes_included,
            "minutes_used": summary.minutes_used,
            "minutes_left": summary.minutes_left,
            "suspended": summary.suspended,
            "period": summary.period,
            "period_end": summary.period_end,
            "minutes_if_bought_now": summary.minutes_if_bought_now,
            "price_if_bought_now": summary.price_if_bought_now,
        }
        return self.OutputSerializer(data).data  # type: ignore[no-any-return]

    @extend_schema(
        summary="Get a profile's US minute bundles",
        description="The bundles the profile holds, this period's minutes and what one more bundle would add "
        "and cost now.",
        responses=OutputSerializer,
        operation_id="sip_profile_bundles",
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(self._output(self.get_object()))

    @extend_schema(
        summary="Buy or cancel US minute bundles",
        request=InputSerializer,
        responses={200: or_quote(OutputSerializer, name="ProfileBundlesOrQuote")},
        parameters=[idempotency.HEADER_PARAMETER, QUOTE_PARAMETER],
        operation_id="sip_profile_bundles_change",
        description=(
            "`buy`: adds `count` bundles (at most one per channel: 400 `bundles_exceed_channels`), each with its "
            "prorated minutes for the rest of the period, charged prorated from the company balance (an unpaid "
            "charge has a 7-day grace period, then the period's minutes are suspended until it is paid).\n\n"
            "`cancel`: stops renewing `count` bundles (400 `not_enough_bundles` if fewer are held); the minutes "
            "already given last until the period ends. Nothing is refunded.\n\n"
            "Send an `Idempotency-Key` so that a retried request cannot buy twice.\n\n"
            "`?quote=1`: the same checks, and 200 with a Quote (what `buy` would charge, including the renewal "
            "of bundles held whose new period has not started yet; `cancel` costs 0), changing nothing."
        ),
    )
    def post(self, request: Request, id: str) -> Response:
        profile = self.get_object()
        if wants_quote(request):
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            action, count = serializer.validated_data["action"], serializer.validated_data["count"]
            quote_of = bundles_buy_quote if action == "buy" else bundles_cancel_quote
            return Response(QuoteSerializer(quote_of(profile=profile, count=count).as_dict()).data)
        return idempotency.idempotent_response(
            request=request,
            company=self.company,
            endpoint=f"sip-profiles/{profile.public_id}/bundles",
            run=lambda claim: self._change(profile),
            atomic=True,
        )

    def _change(self, profile: SipProfile) -> Response:
        serializer = self.InputSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        action, count = serializer.validated_data["action"], serializer.validated_data["count"]
        if action == "buy":
            bundles_buy(actor=self.actor, profile=profile, count=count)
        else:
            bundles_cancel(actor=self.actor, profile=profile, count=count)
        return Response(self._output(self.get_object()))
