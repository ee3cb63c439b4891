from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from apps.audit.filters import AuditEventFilter
from apps.audit.models import AuditEvent
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin


class AuditListView(CompanyPageMixin, View):
    read_capability = Capability.VIEW_AUDIT
    model = AuditEvent

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.order_by("-created_at", "-id")

    def get(self, request: HttpRequest) -> HttpResponse:
        filterset = AuditEventFilter(request.GET, queryset=self.get_queryset())
        events = filterset.qs if filterset.is_valid() else self.get_queryset().none()
        page = Paginator(events, 50).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        context = {"filter": filterset, "page": page, "query": query.urlencode()}
        template = "audit/_events.html" if request.htmx else "audit/list.html"  # type: ignore[attr-defined]
        return render(request, template, context)


class AuditDetailView(CompanyPageMixin, View):
    read_capability = Capability.VIEW_AUDIT
    model = AuditEvent

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        return render(request, "audit/detail.html", {"event": self.get_object_or_404(id)})
