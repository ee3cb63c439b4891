"""Which company a request acts for, and with which role.

An API key acts for its own company with its own role. A browser session acts
for the company chosen in the company switcher (kept in the session), and falls
back to the first company the person belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.accounts.models import ApiKey
from apps.companies.models import Capability, Company, Membership, role_can

SESSION_KEY = "active_company"


@dataclass(frozen=True)
class Tenancy:
    company: Company
    role: str

    def can(self, capability: Capability) -> bool:
        return role_can(self.role, capability)


def resolve_tenancy(request: Any) -> Tenancy | None:
    api_key = getattr(request, "auth", None)
    if isinstance(api_key, ApiKey):
        return Tenancy(company=api_key.company, role=api_key.role)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("company").filter(user=user)
    chosen = request.session.get(SESSION_KEY)
    membership = (memberships.filter(company__public_id=chosen).first() if chosen else None) or memberships.order_by(
        "created_at"
    ).first()
    if membership is None:
        return None
    return Tenancy(company=membership.company, role=membership.role)


def activate_company(request: Any, company: Company) -> None:
    request.session[SESSION_KEY] = str(company.public_id)
