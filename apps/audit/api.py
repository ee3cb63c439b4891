from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit.filters import AuditEventFilter
from apps.audit.models import AuditEvent
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR
from apps.core.fields import TextField, UtcDateTimeField, iso_datetime
from apps.core.keyset import keyset_api_page, keyset_page_serializer, keyset_parameters


# The schema of an audit event; the API writes each one with event_output.
class AuditEventOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    created_at = UtcDateTimeField()
    action = TextField()
    actor = TextField(source="actor_label")
    actor_type = TextField(read_only=True)
    object_type = TextField()
    object_id = TextField()
    object_repr = TextField()
    changes = serializers.JSONField()
    ip_address = serializers.IPAddressField(allow_null=True)


EVENT_VALUES = (
    "id",
    "public_id",
    "created_at",
    "action",
    "actor_label",
    "actor_api_key_id",
    "actor_user_id",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "ip_address",
)


def event_output(row: dict[str, Any]) -> dict[str, Any]:
    """AuditEventOutputSerializer's output, from a row of EVENT_VALUES."""
    actor_type = "api_key" if row["actor_api_key_id"] else "user" if row["actor_user_id"] else "system"
    return {
        "id": str(row["public_id"]),
        "created_at": iso_datetime(row["created_at"]),
        "action": row["action"],
        "actor": row["actor_label"],
        "actor_type": actor_type,
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "object_repr": row["object_repr"],
        "changes": row["changes"],
        "ip_address": row["ip_address"],
    }


class _AuditBase(CompanyScopedAPIView):
    queryset = AuditEvent.objects.all()
    read_capability = Capability.VIEW_AUDIT

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.values(*EVENT_VALUES)


class AuditEventListApi(_AuditBase):
    filterset_class = AuditEventFilter
    pagination_class = None

    @extend_schema(
        summary="List audit events",
        operation_id="audit_events_list",
        filters=True,
        description="Who changed what in the company, when and from where, newest first by (created_at, id); "
        "filter by action, object, actor and time (`since`, `until`: ISO 8601 with a time zone). Paged by cursor: "
        "follow `next` (older events) and `previous` (newer); a deep page costs what the first does and no page "
        "counts the events. `page` is refused (400): this list has no page numbers.",
        parameters=keyset_parameters(),
        responses={
            200: keyset_page_serializer(
                "AuditEventPage", AuditEventOutputSerializer(many=True), older="older events", newer="newer events"
            ),
            400: ERROR,
        },
    )
    def get(self, request: Request) -> Response:
        events = self.filter_queryset(self.get_queryset())
        page, links = keyset_api_page(request, events, time_field="created_at", refuse_page_numbers=True)
        return Response({**links, "results": [event_output(row) for row in page.rows]})


class AuditEventDetailApi(_AuditBase):
    @extend_schema(
        summary="Get an audit event",
        description="One change: the actor, the object and the fields' values before and after (`changes`).",
        responses=AuditEventOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(event_output(self.get_object()))
