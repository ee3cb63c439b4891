"""Reads about recurring charges."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.billing.models import Charge
from apps.companies.models import Company


def charges_in_grace(*, company: Company) -> QuerySet[Charge]:
    """Charges the company balance could not pay whose item still runs until `grace_until`
    (then it is suspended), soonest first. Queries: 1 when evaluated."""
    return Charge.objects.for_company(company).filter(status=Charge.Status.UNPAID).order_by("grace_until", "id")
