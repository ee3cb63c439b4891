"""The API's shared pieces: the company-scoped base view, permissions, the single
error body shape and pagination."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import exceptions, generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.companies.models import Capability, Company
from apps.companies.tenancy import Tenancy, resolve_tenancy
from apps.core import outages
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, ServiceUnavailable
from apps.core.middleware import discard_broken_connections, quiet


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error detail as {field: [messages]}; nested fields joined with dots."""
    if isinstance(detail, dict):
        errors: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            if isinstance(value, dict):
                for sub, messages in _flatten(value).items():
                    errors[f"{name}.{sub}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub, messages in _flatten(item).items():
                        errors[f"{name}.{index}.{sub}"] = messages
            else:
                errors[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
        return errors
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {}


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error has the same body: {"detail": str, "code": str, "errors": {field: [str]}}."""
    if outages.database_unavailable(exc):
        # DRF catches the view's exceptions before any middleware sees them.
        outages.database.failed(exc)
        discard_broken_connections()
        exc = ServiceUnavailable()
    if isinstance(exc, ApplicationError):
        answer = Response(error_body(exc.message, exc.code, exc.errors), status=exc.status_code)
        if isinstance(exc, ServiceUnavailable):
            answer["Retry-After"] = str(exc.retry_after)
            quiet(answer)
        return answer
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = next(iter(errors.values()), ["Invalid input."])[0]
        response.data = error_body(first if len(errors) == 1 else "Some fields are not valid.", "invalid", errors)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = detail.code if hasattr(detail, "code") else exc.default_code
        response.data = error_body(str(detail), str(code))
    return response


class CompanyPermission(permissions.BasePermission):
    """The request acts for a company, and its role has the capability the view asks for."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        tenancy: Tenancy | None = getattr(view, "tenancy", None)
        if tenancy is None:
            self.message = "You are not a member of any company."
            return False
        capability = view.capability_for(request.method)
        return tenancy.can(capability)


class CompanyScopedAPIView(generics.GenericAPIView):  # type: ignore[type-arg]
    """Base of every company API view.

    Subclasses set `queryset` (a model with a `for_company()` queryset) and the
    capabilities they need; they never override get_queryset, so a view cannot
    forget to scope to the request's company. Other companies' rows are 404.
    """

    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [  # type: ignore[misc]
        permissions.IsAuthenticated,
        CompanyPermission,
    ]
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    read_capability: ClassVar[Capability] = Capability.VIEW
    write_capability: ClassVar[Capability | None] = None
    tenancy: Tenancy | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not override get_queryset; use scope_queryset().")
        # Nested InputSerializer/OutputSerializer classes share their names across
        # views; give each a schema component name of its own (CompanyInput, ...).
        base = cls.__name__.removesuffix("Api")
        for attr in ("InputSerializer", "OutputSerializer"):
            nested = cls.__dict__.get(attr)
            if nested is not None and not hasattr(nested, "Meta"):
                nested.Meta = type("Meta", (), {"ref_name": base + attr.removesuffix("Serializer")})

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)
        if request.user and request.user.is_authenticated:
            self.tenancy = resolve_tenancy(request)
        super().initial(request, *args, **kwargs)

    def capability_for(self, method: str | None) -> Capability:
        if method in permissions.SAFE_METHODS:
            return self.read_capability
        if self.write_capability is None:
            raise exceptions.MethodNotAllowed(method or "")
        return self.write_capability

    @property
    def company(self) -> Company:
        assert self.tenancy is not None
        return self.tenancy.company

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset().none()
        return self.scope_queryset(super().get_queryset().for_company(self.company))  # type: ignore[attr-defined]

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Add select_related, filters or ordering; the company filter is already applied."""
        return queryset


def created(data: Any) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)
