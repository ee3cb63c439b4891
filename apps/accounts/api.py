from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import services
from apps.accounts.models import ApiKey
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import created
from apps.core.fields import TextField


class ApiKeyOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    name = TextField()
    role = serializers.ChoiceField(ApiKey.ROLES)
    prefix = TextField(help_text="The visible start of the key, to recognise it.")
    created_by = serializers.EmailField(source="created_by.email")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    key = TextField(help_text="The whole key. Shown only in this response; store it now.")


class _SessionOnly(CompanyScopedAPIView):
    # Keys are managed by people signed in to the portal, never by another key.
    authentication_classes = [SessionAuthentication]
    queryset = ApiKey.objects.all()
    read_capability = Capability.MANAGE_API_KEYS
    write_capability = Capability.MANAGE_API_KEYS

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("created_by").order_by("-created_at")


class ApiKeyListApi(_SessionOnly):
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        name = TextField(max_length=80)
        role = serializers.ChoiceField(ApiKey.ROLES)

    @extend_schema(
        summary="List API keys",
        description="The company's API keys, newest first, revoked ones included; never the keys themselves. "
        "Keys are managed by a signed-in owner or admin (session and CSRF token), never with an API key.",
        responses=ApiKeyOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeyOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create an API key",
        description="A new key acting for the company with `role` (admin, billing or viewer; at most your own "
        "rights: 403 otherwise). The whole key is in this answer only (`Cache-Control: no-store`): store it now.",
        request=InputSerializer,
        responses={201: ApiKeyCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, key = services.api_key_create(actor=self.actor, company=self.company, **serializer.validated_data)
        data = ApiKeyOutputSerializer(api_key).data
        return created({**data, "key": key}, secret=True)


class ApiKeyDetailApi(_SessionOnly):
    @extend_schema(
        summary="Get an API key",
        description="One key's name, role, visible prefix and use; never the key itself.",
        responses=ApiKeyOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(ApiKeyOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Revoke an API key",
        description="The key stops working at once (401 `authentication_failed` for its next request). It stays "
        "listed with `revoked_at`; revoking it again is a 400 `already_revoked`.",
        responses={204: None},
    )
    def delete(self, request: Request, id: str) -> Response:
        services.api_key_revoke(actor=self.actor, api_key=self.get_object())
        return Response(status=204)
