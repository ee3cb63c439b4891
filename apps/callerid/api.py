from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.callerid import selectors, services
from apps.callerid.models import Landline
from apps.companies.models import Capability
from apps.companies.scoping import CompanyScopedAPIView
from apps.core.api import created
from apps.core.fields import TextField


class LandlineOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField(source="public_id")
    number = TextField(help_text="E.164.")
    status = serializers.ChoiceField(
        Landline.Status.choices, help_text="Set by staff review, expiry (12 months after approval) or withdrawal."
    )
    reason = TextField(help_text="Why staff rejected it; empty otherwise.")
    proof_name = TextField(help_text="The name of the uploaded proof of ownership.")
    submitted_at = serializers.DateTimeField(source="created_at")
    verified_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the proof must be renewed.")


class CallerIdListApi(CompanyScopedAPIView):
    """The company's landline registrations; register a landline with its proof of ownership."""

    queryset = Landline.objects.all()
    write_capability = Capability.MANAGE_SERVICE

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        number = TextField(
            help_text="A fixed-line number: E.164 (+44 20 7946 0958) or national in your company's country."
        )
        proof = serializers.FileField(help_text="Proof of ownership (phone bill…): PDF, PNG or JPEG, up to 10 MB.")

    def scope_queryset(self, queryset: Any) -> Any:
        return selectors.landlines_live_first(queryset)

    @extend_schema(
        summary="List landline caller IDs",
        description="The company's landline registrations, live ones first: pending review, verified, rejected, "
        "expired or withdrawn. Online Numbers are caller IDs without registering: see `caller-ids/options/`.",
        responses=LandlineOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(LandlineOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Register a landline caller ID",
        request={"multipart/form-data": InputSerializer},
        responses={201: LandlineOutputSerializer},
        description="Register a landline with its proof of ownership (multipart): only while the company is "
        "verified (400 `not_verified` otherwise). Staff review the proof; once verified, profiles may present "
        "the number for 12 months. A mobile, an Online Number or a number already registered is a 400 on `number`.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        landline = services.landline_register(actor=self.actor, company=self.company, **serializer.validated_data)
        return created(LandlineOutputSerializer(landline).data)


class CallerIdDetailApi(CompanyScopedAPIView):
    queryset = Landline.objects.all()
    write_capability = Capability.MANAGE_SERVICE

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("company")

    @extend_schema(
        summary="Get a landline caller ID",
        description="One landline registration and where its review stands.",
        responses=LandlineOutputSerializer,
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(LandlineOutputSerializer(self.get_object()).data)

    @extend_schema(
        summary="Withdraw a landline caller ID",
        responses={204: None},
        description="The landline stops being a caller ID at once, on every profile that used it (those calls "
        "show no number until another caller ID is set); the company's admins are told. The registration stays "
        "listed as `withdrawn`; withdrawing one that is no longer live is a 400 `not_live`.",
    )
    def delete(self, request: Request, id: str) -> Response:
        services.landline_withdraw(actor=self.actor, landline=self.get_object())
        return Response(status=204)


class CallerIdOptionsApi(CompanyScopedAPIView):
    """The numbers the company's profiles may present as caller ID right now."""

    queryset = Landline.objects.all()
    # A short list (the company's own numbers), answered whole: not paginated.
    pagination_class = None

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        number = TextField(source="e164", help_text="E.164; send it as a profile's `caller_id`.")
        kind = serializers.ChoiceField(["online_number", "landline"], help_text="Where the number comes from.")
        label = TextField(  # type: ignore[assignment]  # a field named like Field.label
            help_text="The number as a person reads it, with its kind."
        )

    @extend_schema(
        summary="List caller ID options",
        description="The numbers the company's profiles may present as caller ID right now: its active Online "
        "Numbers and verified landlines. A plain list (not paginated).",
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        options = selectors.caller_id_options(company=self.company)
        return Response(self.OutputSerializer(options, many=True).data)
