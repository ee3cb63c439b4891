from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.companies.navigation import navigation
from apps.companies.selectors import companies_for_user
from apps.companies.tenancy import resolve_tenancy


def current_company(request: HttpRequest) -> dict[str, Any]:
    """The company switcher's data and the sections the role may open, for the base layout
    (also on allauth's pages)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    tenancy = getattr(request, "tenancy", None) or resolve_tenancy(request)
    if tenancy is None:
        return {"tenancy": None, "user_companies": []}
    return {
        "tenancy": tenancy,
        "user_companies": companies_for_user(user=user),
        "nav_groups": navigation(tenancy=tenancy, path=request.path),
    }
