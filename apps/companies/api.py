from __future__ import annotations

from typing import Any

from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.companies import selectors, services
from apps.companies.filters import MemberFilter
from apps.companies.models import Capability, Invitation, Membership, Role
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import ERROR, created
from apps.core.fields import TextField


class PurchasePolicySerializer(serializers.Serializer):  # type: ignore[type-arg]
    tier = TextField()
    max_purchase = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = TextField()
    limit_overridden = serializers.BooleanField()
    payment_methods = serializers.ListField(child=serializers.ChoiceField(["card", "paypal", "bank_wire"]))


class CompanyApi(CompanyScopedAPIView):
    """The company the request acts for."""

    write_capability = Capability.MANAGE_COMPANY

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        name = TextField(max_length=120, required=False)
        country = CountryField(required=False)
        tax_number = TextField(
            max_length=40,
            required=False,
            allow_blank=True,
            help_text="VAT or tax number printed on receipts; empty for none.",
        )
        currency = TextField(required=False, help_text="Fixed at creation; sending another is an error.")

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        id = serializers.UUIDField(source="public_id")
        name = TextField()
        country = CountryField()
        tax_number = TextField(help_text="VAT or tax number printed on receipts; empty for none.")
        currency = TextField()
        verification_status = TextField()
        purchase_policy = PurchasePolicySerializer()
        your_role = TextField()
        created_at = serializers.DateTimeField()

    def _output(self) -> dict[str, Any]:
        company = self.company
        data = {
            "public_id": company.public_id,
            "name": company.name,
            "country": company.country,
            "tax_number": company.tax_number,
            "currency": company.currency,
            "verification_status": company.verification_status,
            "purchase_policy": selectors.purchase_policy_for_company(company).__dict__,
            "your_role": self.tenancy.role if self.tenancy else "",
            "created_at": company.created_at,
        }
        return self.OutputSerializer(data).data

    @extend_schema(
        summary="Get the company",
        description="The company the request acts for (an API key's company, or a signed-in member's current "
        "company): its name, country, currency, verification and purchase policy, and your role in it.",
        responses=OutputSerializer,
        operation_id="company_retrieve",
    )
    def get(self, request: Request) -> Response:
        return Response(self._output())

    @extend_schema(
        summary="Update the company",
        description="Change the name, country or VAT/tax number (owners and admins). The currency is fixed when "
        "the company is created: sending another is a 400 on `currency`; any other field is a 400 too.",
        request=InputSerializer,
        responses=OutputSerializer,
        operation_id="company_update",
    )
    def patch(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        company = services.company_update(actor=self.actor, company=self.company, **fields)
        assert self.tenancy is not None
        self.tenancy = type(self.tenancy)(company=company, role=self.tenancy.role)
        return Response(self._output())


class MemberOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    email = serializers.EmailField(source="user.email")
    full_name = TextField(source="user.full_name")
    role = serializers.ChoiceField(Role.choices)
    joined_at = serializers.DateTimeField(source="created_at")


class MemberListApi(CompanyScopedAPIView):
    queryset = Membership.objects.all()
    filterset_class = MemberFilter

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("user").order_by("created_at")

    @extend_schema(
        summary="List members",
        description="The company's members and their roles, oldest first; filter by `role`.",
        responses={200: MemberOutputSerializer(many=True), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(MemberOutputSerializer(page, many=True).data)


class MemberDetailApi(CompanyScopedAPIView):
    queryset = Membership.objects.all()
    write_capability = Capability.MANAGE_MEMBERS

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        role = serializers.ChoiceField(Role.choices)

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("user", "company")

    @extend_schema(
        summary="Get a member",
        description="One membership: who, and with which role.",
        responses=MemberOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(MemberOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Change a member's role",
        description="Only an owner makes or unmakes owners (403 otherwise), and the company always keeps one "
        "owner (400).",
        request=InputSerializer,
        responses=MemberOutputSerializer,
    )
    def patch(self, request: Request, id: str) -> Response:
        membership = self.get_object()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            actor=self.actor, membership=membership, role=serializer.validated_data["role"]
        )
        return Response(MemberOutputSerializer(membership).data)

    @extend_schema(
        summary="Remove a member",
        description="The person loses access to the company at once. Only an owner removes an owner, and the "
        "last owner cannot be removed (400).",
        responses={204: None},
    )
    def delete(self, request: Request, id: str) -> Response:
        services.membership_remove(actor=self.actor, membership=self.get_object())
        return Response(status=204)


class InvitationOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    email = serializers.EmailField()
    role = serializers.ChoiceField(Role.choices)
    status = serializers.ChoiceField(["pending", "accepted", "revoked", "expired"])
    invited_by = serializers.EmailField(source="invited_by.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class InvitationListApi(CompanyScopedAPIView):
    queryset = Invitation.objects.all()
    write_capability = Capability.MANAGE_MEMBERS

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        email = serializers.EmailField()
        role = serializers.ChoiceField(Role.choices)

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("invited_by").order_by("-created_at")

    @extend_schema(
        summary="List invitations",
        description="Invitations sent by the company, newest first, whatever their status.",
        responses=InvitationOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(InvitationOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Invite someone",
        request=InputSerializer,
        responses={201: InvitationOutputSerializer},
        description="Invite someone by e-mail with a role. The accept link is e-mailed to them and expires after "
        "7 days; a new invitation to the same address revokes the pending one. An existing member is a 400 on "
        "`email`.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, _token = services.invitation_create(
            actor=self.actor, company=self.company, **serializer.validated_data
        )
        return created(InvitationOutputSerializer(invitation).data)


class InvitationDetailApi(CompanyScopedAPIView):
    queryset = Invitation.objects.all()
    write_capability = Capability.MANAGE_MEMBERS

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("invited_by", "company")

    @extend_schema(
        summary="Get an invitation",
        description="One invitation and its status.",
        responses=InvitationOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(InvitationOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Revoke an invitation",
        description="Its link stops working at once; it stays listed as `revoked`. An invitation that is no "
        "longer pending is a 400 `not_pending`.",
        responses={204: None},
    )
    def delete(self, request: Request, id: str) -> Response:
        services.invitation_revoke(actor=self.actor, invitation=self.get_object())
        return Response(status=204)


class VerificationApi(CompanyScopedAPIView):
    """The company's verification: its status and latest request; submit a new request."""

    write_capability = Capability.MANAGE_COMPANY

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        legal_name = TextField(max_length=200)
        registration_number = TextField(max_length=64)
        address_line1 = TextField(max_length=200)
        address_line2 = TextField(max_length=200, required=False, allow_blank=True)
        city = TextField(max_length=100)
        postal_code = TextField(max_length=20, required=False, allow_blank=True)
        country = CountryField()
        documents = serializers.ListField(child=serializers.FileField(), min_length=1, max_length=5)

    class RequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
        id = serializers.UUIDField(source="public_id")
        status = TextField()
        legal_name = TextField()
        registration_number = TextField()
        address_line1 = TextField()
        address_line2 = TextField()
        city = TextField()
        postal_code = TextField()
        country = CountryField()
        reason = TextField(help_text="Why staff rejected the request.")
        submitted_at = serializers.DateTimeField(source="created_at")
        reviewed_at = serializers.DateTimeField(allow_null=True)
        documents = inline_serializer(
            "VerificationDocument",
            {"name": TextField(source="original_name"), "size": serializers.IntegerField()},
            many=True,
        )

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        status = TextField()
        purchase_policy = PurchasePolicySerializer()
        if_verified = PurchasePolicySerializer(allow_null=True)
        latest_request = serializers.SerializerMethodField()

        def get_latest_request(self, data: dict[str, Any]) -> dict[str, Any] | None:
            request = data["latest_request"]
            return VerificationApi.RequestSerializer(request).data if request else None

    def _output(self) -> Response:
        company = self.company
        company.refresh_from_db()
        return Response(
            self.OutputSerializer(
                {
                    "status": company.verification_status,
                    "purchase_policy": selectors.purchase_policy_for_company(company).__dict__,
                    "if_verified": None if company.is_verified else selectors.verified_policy_preview(company).__dict__,
                    "latest_request": selectors.latest_verification_request(company=company),
                }
            ).data
        )

    @extend_schema(
        summary="Get the company's verification",
        description="Whether the company is verified, its purchase policy now and once verified, and its "
        "latest verification request.",
        responses=OutputSerializer,
        operation_id="verification_retrieve",
    )
    def get(self, request: Request) -> Response:
        return self._output()

    @extend_schema(
        summary="Ask for verification",
        description="Send the company's legal details with 1 to 5 documents (multipart; PDF, PNG or JPEG) for "
        "staff to review. Verified companies get higher purchase limits, bank wire and landline caller IDs. "
        "A request under review, or a company already verified, is a 409 (`already_pending`, "
        "`already_verified`).",
        request={"multipart/form-data": InputSerializer},
        responses={201: OutputSerializer, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        data: dict[str, Any] = {key: request.data.get(key) for key in request.data if key != "documents"}
        data["documents"] = request.FILES.getlist("documents")
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        documents = fields.pop("documents")
        services.verification_submit(actor=self.actor, company=self.company, documents=documents, **fields)
        response = self._output()
        response.status_code = 201
        return response
