"""Tenancy for views: the base of every company API view and every company page. Each resolves
the request's company once, checks its role's capability, and scopes querysets to the company
(another company's rows are a 404); subclasses may not override get_queryset."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from rest_framework import exceptions, generics, permissions
from rest_framework.request import Request

from apps.companies.models import Capability, Company
from apps.companies.tenancy import Tenancy, resolve_tenancy
from apps.core.actor import Actor


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
            request.tenancy = self.tenancy  # type: ignore[attr-defined]  # as the page mixin does, for FilterSets
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


class CompanyPageMixin(LoginRequiredMixin):
    """Base of every company page: resolves the company once, checks the role's
    capability, and scopes querysets to the company (other companies' rows: 404)."""

    read_capability: ClassVar[Capability] = Capability.VIEW
    write_capability: ClassVar[Capability | None] = None
    model: Any = None
    tenancy: Tenancy
    request: HttpRequest

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not override get_queryset; use scope_queryset().")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        tenancy = resolve_tenancy(request)
        if tenancy is None:
            return redirect("company-create")
        self.tenancy = tenancy
        request.tenancy = tenancy  # type: ignore[attr-defined]
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):  # type: ignore[attr-defined]
            return self.http_method_not_allowed(request, *args, **kwargs)  # type: ignore[attr-defined,no-any-return,return-value]
        capability = self.read_capability if request.method in ("GET", "HEAD", "OPTIONS") else self.write_capability
        if capability is None or not tenancy.can(capability):
            raise PermissionDenied("Your role does not allow this.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    @property
    def company(self) -> Company:
        return self.tenancy.company

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    def get_queryset(self) -> QuerySet[Any]:
        return self.scope_queryset(self.model.objects.for_company(self.company))

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def get_object_or_404(self, public_id: Any) -> Any:
        return get_object_or_404(self.get_queryset(), public_id=public_id)
