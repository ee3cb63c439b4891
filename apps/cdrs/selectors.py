"""Reads about CDRs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from apps.cdrs.models import Cdr, PendingCdr
from apps.companies.models import Company


def company_has_calls(*, company: Company) -> bool:
    """Whether any call of the company went through the edge (its PBX is connected). Queries: 1."""
    return Cdr.objects.filter(company=company).exists()


@dataclass(frozen=True)
class RatingBacklog:
    waiting: int  # CDRs imported and not rated yet
    oldest_ended_at: datetime | None  # when the oldest of them ended (None: nothing waits)


def rating_backlog() -> RatingBacklog:
    """The rating job's queue: how many CDRs wait and since when the oldest call ended (the
    rating lag). Queries: 2 (the count, then the oldest by its key, the CDR's own order)."""
    waiting = PendingCdr.objects.count()
    oldest = (
        Cdr.objects.filter(pk=PendingCdr.objects.order_by("cdr_id").values("cdr_id")[:1])
        .values_list("ended_at", flat=True)
        .first()
        if waiting
        else None
    )
    return RatingBacklog(waiting=waiting, oldest_ended_at=oldest)
