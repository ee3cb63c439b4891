"""A SIP profile's live state in the API: registrations and calls in progress, per edge node."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.companies.scoping import CompanyScopedAPIView
from apps.core.fields import TextField
from apps.edge.live import ProfileLiveState, profile_live_state
from apps.edge.models import EdgeNode
from apps.sip_profiles.models import SipProfile


class EdgeRegistrationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    contact = TextField(help_text="The Contact URI the PBX registered.")
    received = TextField(
        help_text="The address its REGISTER really came from when it is behind NAT (calls go there); empty otherwise."
    )
    user_agent = TextField(help_text="The PBX's User-Agent header (may be empty).")
    expires_in = serializers.IntegerField(allow_null=True, help_text="Seconds until it expires; null if permanent.")
    expires_at = serializers.DateTimeField(allow_null=True)
    socket = TextField(help_text="The node's address it registered to, e.g. udp:198.51.100.7:5060.")


class EdgeNodeStatusSerializer(serializers.Serializer):  # type: ignore[type-arg]
    node = TextField(help_text="The edge node's name.")
    role = serializers.ChoiceField(EdgeNode.Role.choices)
    reachable = serializers.BooleanField(help_text="False: the node did not answer in time (see `error`).")
    error = TextField(help_text="Why the node is not answering; empty when it answered.")
    registered = serializers.BooleanField(
        allow_null=True, help_text="The PBX has a contact on this node; null for IP profiles or a node not answering."
    )
    registrations = EdgeRegistrationSerializer(
        many=True, allow_null=True, help_text="null for IP profiles (no registration) or a node not answering."
    )
    active_calls = serializers.IntegerField(
        allow_null=True, help_text="Calls in progress through this node (in and out); null when not answering."
    )


class ProfileStatusApi(CompanyScopedAPIView):
    """What the trunk is doing now, asked of every edge node in parallel. The answer comes
    within about a second whatever the nodes do: a node that does not answer in time is
    listed with `reachable: false` and its error, the others as they answered."""

    queryset = SipProfile.objects.all()

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        profile = serializers.UUIDField()
        auth_method = serializers.ChoiceField(SipProfile.AuthMethod.choices)
        registration_applies = serializers.BooleanField(
            help_text="False for IP profiles: they are recognised by their source address and never register."
        )
        registered = serializers.BooleanField(
            allow_null=True, help_text="Registered on at least one node that answered; null for IP profiles."
        )
        channels = serializers.IntegerField(help_text="Channels subscribed: the most simultaneous calls.")
        active_calls = serializers.IntegerField(help_text="Calls in progress on the nodes that answered.")
        nodes_answering = serializers.IntegerField()
        complete = serializers.BooleanField(help_text="Every node answered, so the totals count every node.")
        checked_at = serializers.DateTimeField()
        nodes = EdgeNodeStatusSerializer(many=True, help_text="Every enabled edge node, primary first.")

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.filter(deleted_at__isnull=True)

    @extend_schema(
        summary="Get a profile's live status",
        description="Registrations and calls in progress right now, asked of every edge node in parallel. The "
        "answer comes within about a second whatever the nodes do: a node that does not answer in time is listed "
        "with `reachable: false` and its error, and `complete` is false. Not cached (`Cache-Control: no-store`).",
        responses=OutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        profile = self.get_object()
        live = profile_live_state(profile=profile)
        return Response(self.OutputSerializer(status_body(profile, live)).data, headers={"Cache-Control": "no-store"})


def status_body(profile: SipProfile, live: ProfileLiveState) -> dict[str, Any]:
    return {
        "profile": profile.public_id,
        "auth_method": profile.auth_method,
        "registration_applies": live.registration_applies,
        "registered": live.registered,
        "channels": live.channels,
        "active_calls": live.active_calls,
        "nodes_answering": live.nodes_answering,
        "complete": live.complete,
        "checked_at": live.checked_at,
        "nodes": [{**asdict(node), "registered": node.registered} for node in live.nodes],
    }
