"""What a report is asked for (`month`, `profile`, `by`), read from a page's or the API's query
string: the same rules and the same errors (ApplicationError naming the field) for both."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from apps.cdrs.selectors import call_retention_cutoff
from apps.companies.models import Company
from apps.core.exceptions import ApplicationError
from apps.reports.monthly.selectors import Month
from apps.reports.monthly.tables import USAGE_GROUPS
from apps.sip_profiles.models import SipProfile


@dataclass(frozen=True)
class ReportParams:
    month: Month
    profile: SipProfile | None
    by: str


def earliest_month() -> Month:
    """The first month the reports offer: the month the call retention cutoff falls in
    (CALL_RETENTION_MONTHS); its calls before the cutoff are read from the daily figures."""
    return Month(call_retention_cutoff(now=timezone.now()).date().replace(day=1))


def report_params(query: Mapping[str, str], *, company: Company, groups: Sequence[str] = USAGE_GROUPS) -> ReportParams:
    """`groups`: the report's CSV tables (`by`), its default first. Queries: 1 when a profile
    is named, else 0."""
    month = Month.parse(query.get("month"), today=timezone.now().date())
    earliest = earliest_month()
    if month.first < earliest.first:
        raise ApplicationError(
            f"Reports go back {settings.CALL_RETENTION_MONTHS} months, to {earliest.label}.", field="month"
        )
    profile = None
    text = (query.get("profile") or "").strip()
    if text:
        try:
            public_id = uuid.UUID(text)
        except ValueError:
            raise ApplicationError("Not a profile id.", field="profile") from None
        profile = SipProfile.objects.for_company(company).filter(public_id=public_id).first()
        if profile is None:
            raise ApplicationError("No such profile in this company.", field="profile")
    by = (query.get("by") or groups[0]).strip()
    if by not in groups:
        raise ApplicationError(f"Choose one of: {', '.join(groups)}.", field="by")
    return ReportParams(month, profile, by)
