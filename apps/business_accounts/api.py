from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.business_accounts import selectors, services
from apps.business_accounts.filters import BusinessAccountFilter
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Capability, Company, Membership
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR, created
from apps.core.exceptions import ApplicationError
from apps.core.fields import TextField


class BusinessAccountOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    name = TextField(help_text="The callable name; fixed after creation.")
    display_name = TextField()
    member = serializers.UUIDField(
        source="member.public_id", allow_null=True, default=None, help_text="The linked membership's id."
    )
    member_email = serializers.EmailField(source="member.user.email", allow_null=True, default=None)
    sip_profile = serializers.UUIDField(
        source="sip_profile.public_id", allow_null=True, default=None, help_text="The profile it is routed to."
    )
    sip_profile_name = TextField(source="sip_profile.name", allow_null=True, default=None)
    signin_enabled = serializers.BooleanField(
        help_text="Whether the account can be signed in to with its name (in an app or phone, which then takes "
        "its calls). False while the account is routed to a profile: its calls ring the profile's PBX instead."
    )
    sip_address = serializers.SerializerMethodField()
    call_button_html = serializers.SerializerMethodField(
        help_text='A copy-paste “call us” button for a website: an <a href="sip:…"> link.'
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_sip_address(self, account: BusinessAccount) -> str:
        return selectors.sip_address(account)

    def get_call_button_html(self, account: BusinessAccount) -> str:
        return selectors.call_button_html(account)


def _member(company: Company, value: Any) -> Membership | None:
    if value is None:
        return None
    member = selectors.member_choices(company=company).filter(public_id=value).first()
    if member is None:
        raise ApplicationError("Choose a member of your company.", field="member")
    return member


def _profile(company: Company, value: Any) -> Any:
    if value is None:
        return None
    profile = selectors.live_profiles(company=company).filter(public_id=value).first()
    if profile is None:
        raise ApplicationError("Choose one of your company's SIP profiles.", field="sip_profile")
    return profile


class BusinessAccountListApi(CompanyScopedAPIView):
    queryset = BusinessAccount.objects.all()
    write_capability = Capability.MANAGE_SERVICE
    filterset_class = BusinessAccountFilter

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        name = TextField(
            help_text="6–32 characters: lowercase letters, digits, “.”, “-”, “_”, starting with a letter. "
            "Unique across the service; fixed after creation."
        )
        display_name = TextField(max_length=100)
        member = serializers.UUIDField(required=False, allow_null=True, help_text="A membership id of the company.")
        sip_profile = serializers.UUIDField(
            required=False, allow_null=True, help_text="Route the new account to this profile at once."
        )

    def scope_queryset(self, queryset: Any) -> Any:
        return selectors.with_relations(queryset)

    @extend_schema(
        summary="List business accounts",
        description="The company's business accounts (callable names such as `sales.acme`), with the profile "
        "each is routed to; filter by `search` or by the profile they are routed to.",
        responses={200: BusinessAccountOutputSerializer(many=True), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(BusinessAccountOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a business account",
        description="A callable name, unique across the service, optionally linked to a member and routed to "
        "one of the company's profiles at once; an account whose routing is refused is not created either. "
        "A name already taken is a 400 on `name`.",
        request=InputSerializer,
        responses={201: BusinessAccountOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        member = _member(self.company, data.get("member"))
        profile = _profile(self.company, data.get("sip_profile"))
        # One outcome: an account whose routing is refused is not created either.
        with transaction.atomic():
            account = services.business_account_create(
                actor=self.actor,
                company=self.company,
                name=data["name"],
                display_name=data["display_name"],
                member=member,
            )
            if profile is not None:
                account = services.business_account_assign(actor=self.actor, account=account, profile=profile)
        return created(BusinessAccountOutputSerializer(self._fresh(account)).data)

    def _fresh(self, account: BusinessAccount) -> BusinessAccount:
        return self.get_queryset().select_related("sip_profile", "member__user").get(pk=account.pk)


class BusinessAccountDetailApi(CompanyScopedAPIView):
    queryset = BusinessAccount.objects.all()
    write_capability = Capability.MANAGE_SERVICE

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        name = TextField(required=False, help_text="Fixed after creation; sending another is an error.")
        display_name = TextField(required=False, max_length=100)
        member = serializers.UUIDField(required=False, allow_null=True, help_text="A membership id, or null.")
        sip_profile = serializers.UUIDField(
            required=False, allow_null=True, help_text="A profile id to route the account to, or null to unassign."
        )

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("company", "sip_profile", "member__user")

    @extend_schema(
        summary="Get a business account",
        description="One business account: its SIP address, routing and a copy-paste call button.",
        responses=BusinessAccountOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(BusinessAccountOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Update a business account",
        description="Change the display name, the linked member or the routing (`sip_profile`: a profile id, "
        "or null to unassign); all changes are made together or not at all. The name is fixed (400 on `name`).",
        request=InputSerializer,
        responses=BusinessAccountOutputSerializer,
    )
    def patch(self, request: Request, id: str) -> Response:
        account = self.get_object()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        fields: dict[str, Any] = {k: data[k] for k in ("name", "display_name") if k in data}
        if "member" in data:
            fields["member"] = _member(self.company, data["member"])
        profile = _profile(self.company, data["sip_profile"]) if "sip_profile" in data else None
        # All or nothing: a new member and a routing that the member's role forbids fail together.
        with transaction.atomic():
            if fields:
                account = services.business_account_update(actor=self.actor, account=account, **fields)
            if "sip_profile" in data:
                account = services.business_account_assign(actor=self.actor, account=account, profile=profile)
        return Response(BusinessAccountOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Delete a business account",
        responses={204: None},
        description="Delete the account; its name can then be taken again. Refused with a 400 `has_numbers` while "
        "Online Numbers ring it: unassign them first.",
    )
    def delete(self, request: Request, id: str) -> Response:
        services.business_account_delete(actor=self.actor, account=self.get_object())
        return Response(status=204)
