from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from apps.audit.models import AuditEvent
from apps.companies.models import Capability, Notice
from apps.companies.scoping import CompanyPageMixin
from apps.companies.selectors import purchase_policy_for_company
from apps.reports.dashboard import dashboard_for
from apps.reports.status import service_status


class DashboardView(CompanyPageMixin, TemplateView):
    """The home page: balance, spend, each profile's trunk now, alerts and next steps."""

    template_name = "reports/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        tenancy = self.tenancy
        context["board"] = dashboard_for(tenancy=tenancy)
        context["policy"] = purchase_policy_for_company(self.company)
        context["member_count"] = self.company.memberships.count()
        context["notices"] = Notice.objects.for_company(self.company).filter(dismissed_at__isnull=True)[:20]
        context["can"] = {capability.name.lower(): tenancy.can(capability) for capability in Capability}
        context["can_dismiss"] = tenancy.can(Capability.MANAGE_COMPANY)
        if tenancy.can(Capability.VIEW_AUDIT):
            context["recent_events"] = AuditEvent.objects.for_company(self.company).order_by("-created_at", "-id")[:8]
        return context


class StatusView(CompanyPageMixin, TemplateView):
    """The service's status for any signed-in member: edge nodes, CDR import and rating lag,
    task queues, unprocessed payment events."""

    template_name = "reports/status.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["status"] = service_status()
        return context
