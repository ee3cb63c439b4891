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
from apps.core.fields import TextField


class AuditEventOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    created_at = serializers.DateTimeField()
    action = TextField()
    actor = TextField(source="actor_label")
    actor_type = serializers.SerializerMethodField()
    object_type = TextField()
    object_id = TextField()
    object_repr = TextField()
    changes = serializers.JSONField()
    ip_address = serializers.IPAddressField(allow_null=True)

    def get_actor_type(self, event: AuditEvent) -> str:
        if event.actor_api_key_id:
            return "api_key"
        return "user" if event.actor_user_id else "system"


class _AuditBase(CompanyScopedAPIView):
    queryset = AuditEvent.objects.all()
    read_capability = Capability.VIEW_AUDIT

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.order_by("-created_at", "-id")


class AuditEventListApi(_AuditBase):
    filterset_class = AuditEventFilter

    @extend_schema(
        summary="List audit events",
        description="Who changed what in the company, when and from where, newest first; filter by action, "
        "object, actor and time (`since`, `until`: ISO 8601 with a time zone).",
        responses={200: AuditEventOutputSerializer(many=True), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventOutputSerializer(page, many=True).data)


class AuditEventDetailApi(_AuditBase):
    @extend_schema(
        summary="Get an audit event",
        description="One change: the actor, the object and the fields' values before and after (`changes`).",
        responses=AuditEventOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(AuditEventOutputSerializer(self.get_object()).data)
