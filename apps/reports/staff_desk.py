"""What needs a person on the staff side (the admin's index, /staff/): each kind of waiting
work with its count and the staff list filtered to it. Here because it reads every layer up to
the edge (reports sits above them all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import CharField, Count, QuerySet, Value
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from apps.billing.models import CreditPurchase
from apps.callerid.models import Landline
from apps.companies.models import VerificationRequest
from apps.core.models import ImportJob
from apps.edge.models import EdgeProvisioning

# A failed import is news for this long; older ones are history (its list still has them all).
FAILED_IMPORTS_DAYS = 7


@dataclass(frozen=True)
class WaitingWork:
    key: str
    label: str
    count: int
    url: str


def _waiting(now: Any) -> list[tuple[str, str, QuerySet[Any], str, dict[str, str]]]:
    since = (now - timedelta(days=FAILED_IMPORTS_DAYS)).date().isoformat()
    return [
        (
            "verifications",
            "Company verifications waiting",
            VerificationRequest.objects.filter(status=VerificationRequest.Status.PENDING),
            "admin:companies_verificationrequest_changelist",
            {"status__exact": VerificationRequest.Status.PENDING},
        ),
        (
            "landlines",
            "Landline caller IDs to review",
            Landline.objects.filter(status=Landline.Status.PENDING),
            "admin:callerid_landline_changelist",
            {"status__exact": Landline.Status.PENDING},
        ),
        (
            "wires",
            "Bank wires to confirm",
            CreditPurchase.objects.filter(method=CreditPurchase.Method.BANK_WIRE, status=CreditPurchase.Status.PENDING),
            "admin:billing_creditpurchase_changelist",
            {"method__exact": CreditPurchase.Method.BANK_WIRE, "status__exact": CreditPurchase.Status.PENDING},
        ),
        (
            "imports",
            f"Imports that failed (CDRs, rate decks, number stock; last {FAILED_IMPORTS_DAYS} days)",
            ImportJob.objects.filter(status=ImportJob.Status.FAILED, created_at__date__gte=since),
            "admin:core_importjob_changelist",
            {"status__exact": ImportJob.Status.FAILED, "created_at__gte": since},
        ),
        (
            "provisioning",
            "SIP profiles the edge failed to provision",
            EdgeProvisioning.objects.filter(state=EdgeProvisioning.State.FAILED),
            "admin:edge_edgeprovisioning_changelist",
            {"state__exact": EdgeProvisioning.State.FAILED},
        ),
    ]


def staff_waiting_work() -> list[WaitingWork]:
    """Every kind of waiting work, in the order staff should look, with its count (zero
    included): one query, the counts of each kind as one UNION ALL."""
    kinds = _waiting(timezone.now())
    counts: QuerySet[Any] | None = None
    for key, _label, queryset, _url, _params in kinds:
        counted = (
            queryset.order_by()
            .annotate(waiting_kind=Value(key, output_field=CharField()))
            .values("waiting_kind")
            .annotate(n=Count("pk"))
            .values_list("waiting_kind", "n")
        )
        counts = counted if counts is None else counts.union(counted, all=True)
    found = dict(counts) if counts is not None else {}
    return [
        WaitingWork(key=key, label=label, count=found.get(key, 0), url=f"{reverse(url)}?{urlencode(params)}")
        for key, label, _queryset, url, params in kinds
    ]
