from __future__ import annotations

import sys
from typing import Any, ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from apps.companies.models import Capability, Company, Notice
from apps.companies.tenancy import Tenancy, resolve_tenancy
from apps.core import outages
from apps.core.actor import Actor
from apps.core.middleware import database_unavailable_response, quiet


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
        from django.shortcuts import get_object_or_404

        return get_object_or_404(self.get_queryset(), public_id=public_id)


class DashboardView(CompanyPageMixin, TemplateView):
    template_name = "core/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from apps.audit.models import AuditEvent
        from apps.companies.selectors import purchase_policy_for_company

        context = super().get_context_data(**kwargs)
        context["policy"] = purchase_policy_for_company(self.company)
        context["member_count"] = self.company.memberships.count()
        context["notices"] = Notice.objects.for_company(self.company).filter(dismissed_at__isnull=True)[:20]
        context["can_dismiss"] = self.tenancy.can(Capability.MANAGE_COMPANY)
        if self.tenancy.can(Capability.VIEW_AUDIT):
            context["recent_events"] = AuditEvent.objects.for_company(self.company).order_by("-created_at", "-id")[:8]
        return context


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Each dependency's state, for load balancers, docker-compose and operators (/health/ and
    /healthz). 200 when PostgreSQL and Redis answer, else 503; Stripe's state is reported
    without changing the code. Needs neither the session nor the user, so it can report the
    database down itself (DatabaseUnavailableMiddleware lets it through)."""
    from apps.core.health import run_checks

    healthy, checks = run_checks()
    degraded = not healthy or not all(check["ok"] for check in checks.values())
    body = {"status": "degraded" if degraded else "ok", "checks": checks}
    response = JsonResponse(body, status=200 if healthy else 503)
    return quiet(response)  # a failed check is logged once per outage (apps.core.outages), not per poll


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found.", "code": "not_found", "errors": {}}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]
    if exc is not None and outages.database_unavailable(exc):
        # The last net, for a database failure outside any view (a middleware's response
        # phase): DatabaseUnavailableMiddleware catches the rest. Logged once per outage.
        return database_unavailable_response(request, exc)
    if _wants_json(request):
        return JsonResponse({"detail": "Server error.", "code": "server_error", "errors": {}}, status=500)
    return render(request, "500.html", status=500)
