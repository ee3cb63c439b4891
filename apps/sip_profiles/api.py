from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.quotes import QUOTE_PARAMETER, QuoteSerializer, or_quote, wants_quote
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR, created
from apps.core.fields import TextField, UtcDateTimeField, iso_datetime
from apps.sip_profiles import services
from apps.sip_profiles.filters import SipProfileFilter
from apps.sip_profiles.hooks import NodeProvisioning
from apps.sip_profiles.models import MAX_CHANNELS, MIN_CHANNELS, AllowedAddress, SipProfile
from apps.sip_profiles.selectors import profile_details, profile_values


class AllowedAddressSerializer(serializers.Serializer):  # type: ignore[type-arg]
    address = TextField(
        help_text="The PBX's public IPv4/IPv6 host, or a network up to /24 (IPv4) or /64 (IPv6). Private, "
        "loopback, link-local and multicast addresses are refused, and so are the documentation ranges "
        "(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) as reserved for documentation."
    )
    port = serializers.IntegerField(required=False, min_value=1, max_value=65535, help_text="Default 5060 (TLS 5061).")
    transport = serializers.ChoiceField(AllowedAddress.Transport.choices, required=False, default="udp")


class NodeProvisioningSerializer(serializers.Serializer):  # type: ignore[type-arg]
    node = TextField(help_text="The edge node's name.")
    role = serializers.ChoiceField([("primary", "Primary"), ("secondary", "Secondary")])
    public_host = TextField(help_text="The node's host name for your PBX (may be empty).")
    state = serializers.ChoiceField(SipProfile.Provisioning.choices)
    synced_at = serializers.DateTimeField(allow_null=True, help_text="When the node last took the profile.")
    error = TextField(help_text="Why the last attempt failed; empty unless failed.")
    attempts = serializers.IntegerField(help_text="Failed attempts since the last success (retried with backoff).")


# The schema of a profile; the API writes each one with profile_output (plain dicts from
# selectors.profile_values and profile_details: no model instances, no per-field calls).
class SipProfileOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    name = TextField()
    description = TextField()
    auth_method = serializers.ChoiceField(SipProfile.AuthMethod.choices)
    sip_username = TextField(allow_null=True, help_text="Registration profiles only.")
    sip_domain = TextField(source="sip_realm", help_text="The digest realm and registrar domain.")
    allowed_ips = serializers.ListField(child=serializers.DictField(), read_only=True)
    channels = serializers.IntegerField()
    us_minute_bundles = serializers.IntegerField(
        help_text="Bundles held and renewed monthly; minutes and changes: /api/v1/sip-profiles/{id}/bundles/."
    )
    caller_id = TextField(allow_null=True, read_only=True, help_text="E.164, or null: calls show “Unknown number”.")
    withhold_caller_id = serializers.BooleanField()
    tls_required = serializers.BooleanField()
    srtp_required = serializers.BooleanField()
    status = serializers.ChoiceField(SipProfile.Status.choices)
    provisioning = NodeProvisioningSerializer(
        many=True,
        read_only=True,
        help_text="Where the profile stands on each SIP edge node (primary first): pending, synced, or failed "
        "with the error and the attempts so far.",
    )
    provisioning_state = serializers.ChoiceField(
        SipProfile.Provisioning.choices,
        help_text="A summary of `provisioning`: failed if any node failed, synced once every node is, else pending.",
    )
    business_accounts = serializers.ListField(child=TextField(), read_only=True)
    created_at = UtcDateTimeField()
    updated_at = UtcDateTimeField()


def _node_output(node: NodeProvisioning) -> dict[str, Any]:
    return {
        "node": node.node,
        "role": node.role,
        "public_host": node.public_host,
        "state": node.state,
        "synced_at": iso_datetime(node.synced_at),
        "error": node.error,
        "attempts": node.attempts,
    }


def profile_output(row: dict[str, Any]) -> dict[str, Any]:
    """SipProfileOutputSerializer's output, from a row of selectors.profile_details."""
    return {
        "id": str(row["public_id"]),
        "name": row["name"],
        "description": row["description"],
        "auth_method": row["auth_method"],
        "sip_username": row["sip_username"],
        "sip_domain": row["sip_realm"],
        "allowed_ips": row["allowed_addresses"],
        "channels": row["channels"],
        "us_minute_bundles": row["us_minute_bundles"],
        "caller_id": row["caller_id"],
        "withhold_caller_id": row["withhold_caller_id"],
        "tls_required": row["tls_required"],
        "srtp_required": row["srtp_required"],
        "status": row["status"],
        "provisioning": [_node_output(node) for node in row["provisioning"]],
        "provisioning_state": row["provisioning_state"],
        "business_accounts": row["business_accounts"],
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }


def profile_outputs(rows: Any) -> list[dict[str, Any]]:
    return [profile_output(row) for row in profile_details(list(rows))]


class SipProfileCreatedSerializer(SipProfileOutputSerializer):
    password = TextField(
        allow_null=True, help_text="The SIP password (registration profiles). Shown only in this response."
    )


class _ProfileFields(serializers.Serializer):  # type: ignore[type-arg]
    name = TextField(max_length=80)
    description = TextField(max_length=300, required=False, allow_blank=True)
    allowed_ips = AllowedAddressSerializer(many=True, required=False)
    channels = serializers.IntegerField(min_value=MIN_CHANNELS, max_value=MAX_CHANNELS)
    caller_id = TextField(
        required=False, allow_null=True, allow_blank=True, help_text="E.164 of an Online Number or proven landline."
    )
    withhold_caller_id = serializers.BooleanField(required=False)
    tls_required = serializers.BooleanField(required=False)
    srtp_required = serializers.BooleanField(required=False)


class _Base(CompanyScopedAPIView):
    queryset = SipProfile.objects.all()
    write_capability = Capability.MANAGE_SERVICE

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True).order_by("name")

    def output(self, profile_id: int) -> dict[str, Any]:
        """One profile as the API writes it (after a write: read back from the database)."""
        return profile_outputs(profile_values(self.get_queryset().filter(pk=profile_id)))[0]


class SipProfileListApi(_Base):
    filterset_class = SipProfileFilter

    class InputSerializer(_ProfileFields):
        auth_method = serializers.ChoiceField(SipProfile.AuthMethod.choices)
        us_minute_bundles = serializers.IntegerField(
            min_value=0,
            max_value=MAX_CHANNELS,
            required=False,
            help_text="Bundles to buy with the profile (at most one per channel), charged prorated. Later: "
            "/api/v1/sip-profiles/{id}/bundles/.",
        )

    @extend_schema(
        summary="List SIP profiles",
        description="The company's SIP profiles (trunks), by name, with their provisioning on each edge node; "
        "filter by status, authentication method or `search` (name, description, SIP username).",
        responses={200: SipProfileOutputSerializer(many=True), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(profile_values(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(profile_outputs(page))

    @extend_schema(
        summary="Create a SIP profile",
        description="A new trunk for a PBX: `registration` (SIP digest: a username and password are issued; the "
        "password is in this answer only, with `Cache-Control: no-store`) or `ip` (calls are recognised by the "
        "`allowed_ips` they come from). Its first channels (and any `us_minute_bundles`) are charged from the "
        "company balance, prorated to the renewal day (the day of creation, at most the 28th). The profile is then "
        "pushed to every edge node (`provisioning`). A name already used is a 400 `name_taken`. With `?quote=1`: "
        "the same checks, and 200 with what it would charge, creating nothing.",
        request=InputSerializer,
        parameters=[QUOTE_PARAMETER],
        responses={201: SipProfileCreatedSerializer, 200: QuoteSerializer, 400: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if wants_quote(request):
            quote = services.sip_profile_create_quote(company=self.company, **serializer.validated_data)
            return Response(QuoteSerializer(quote.as_dict()).data)
        profile, password = services.sip_profile_create(
            actor=self.actor, company=self.company, **serializer.validated_data
        )
        return created({**self.output(profile.pk), "password": password}, secret=password is not None)


class SipProfileDetailApi(_Base):
    class InputSerializer(_ProfileFields):
        status = serializers.ChoiceField(SipProfile.Status.choices, required=False)

    @extend_schema(
        summary="Get a SIP profile",
        description="One profile with its addresses, channels, caller ID and provisioning on each edge node.",
        responses=SipProfileOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        rows = profile_values(self.get_queryset().filter(public_id=id))
        return Response(profile_outputs([get_object_or_404(rows)])[0])

    @extend_schema(
        summary="Update a SIP profile",
        description="Changes the fields sent (the others are kept); `allowed_ips`, when sent, replaces the list. "
        "More `channels` are charged from the company balance, prorated to the renewal day; fewer take effect at "
        "once, with no refund. The authentication method is fixed (400 on `auth_method`); bundles change through "
        "`sip-profiles/{id}/bundles/` (400 on `us_minute_bundles`). The edge nodes take the change within seconds "
        "(`provisioning`). With `?quote=1`: 200 with a Quote for the `channels` sent (the profile's own if none is "
        "sent), changing nothing.",
        request=InputSerializer,
        parameters=[QUOTE_PARAMETER],
        responses={200: or_quote(SipProfileOutputSerializer, name="SipProfileOrQuote"), 400: ERROR},
    )
    def patch(self, request: Request, id: str) -> Response:
        profile = self.get_object()
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if "auth_method" in request.data:
            raise serializers.ValidationError({"auth_method": ["The authentication method is fixed."]})
        if "us_minute_bundles" in request.data:
            raise serializers.ValidationError(
                {
                    "us_minute_bundles": [
                        f"Buy or cancel bundles with POST /api/v1/sip-profiles/{profile.public_id}/bundles/."
                    ]
                }
            )
        if wants_quote(request):
            channels = serializer.validated_data.get("channels", profile.channels)
            quote = services.sip_profile_channels_quote(profile=profile, channels=channels)
            return Response(QuoteSerializer(quote.as_dict()).data)
        services.sip_profile_update(actor=self.actor, profile=profile, **serializer.validated_data)
        return Response(self.output(profile.pk))

    @extend_schema(
        summary="Delete a SIP profile",
        responses={204: None},
        description="Deletes the profile for you (its calls, charges and audit history are kept): its business "
        "accounts and number routing are released and the edge stops accepting its PBX. It is then 404.",
    )
    def delete(self, request: Request, id: str) -> Response:
        services.sip_profile_delete(actor=self.actor, profile=self.get_object())
        return Response(status=204)


class SipProfileResetPasswordApi(_Base):
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        sip_username = TextField()
        sip_domain = TextField()
        password = TextField(help_text="Shown only in this response.")

    @extend_schema(
        summary="Issue a new SIP password",
        description="A new password for a registration profile, in this answer only (`Cache-Control: "
        "no-store`); the old one stops working once the edge nodes take the change. An IP profile has no "
        "password: 400 `no_password`. Send no body.",
        request=None,
        responses=OutputSerializer,
    )
    def post(self, request: Request, id: str) -> Response:
        profile = self.get_object()
        password = services.sip_profile_reset_password(actor=self.actor, profile=profile)
        return Response(
            {"sip_username": profile.sip_username, "sip_domain": settings.SIP_DOMAIN, "password": password},
            headers={"Cache-Control": "no-store"},
        )
