"""US minute bundles: each gives a SIP profile 5,000 minutes a monthly period for calls to US
landlines and mobiles, used before its credit.

`SipProfile.us_minute_bundles` is how many bundles the profile holds and renews (never more
than its channels: a CHECK constraint). A BundlePeriod is one monthly period of a profile's
bundles: the minutes they give and how many rating has used. Minutes reset with each new
period; a bundle bought mid-period adds its prorated minutes to the current one; a cancelled
bundle stops renewing but its minutes last until the period ends."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from apps.companies.models import Company, CompanyOwnedQuerySet

MINUTES_PER_BUNDLE = 5000
# The share of a period's minutes used at which the company is told, once each.
NOTICE_THRESHOLDS = (80, 100)


class BundlePeriod(models.Model):
    sip_profile = models.ForeignKey("sip_profiles.SipProfile", on_delete=models.PROTECT, related_name="bundle_periods")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The most bundles that gave minutes in this period.
    bundles = models.PositiveSmallIntegerField(default=0)
    minutes_included = models.PositiveIntegerField(default=0)
    minutes_used = models.PositiveIntegerField(default=0)
    # A bundle charge of this period is unpaid after its grace period: its minutes cannot be
    # used (calls are charged at the standard rate) until it is paid.
    suspended = models.BooleanField(default=False)
    notified_80_at = models.DateTimeField(null=True, blank=True)
    notified_100_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["sip_profile", "-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["sip_profile", "period_start"], name="bundle_period_unique"),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="bundle_period_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(minutes_used__lte=F("minutes_included")), name="bundle_period_used_le_included"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sip_profile} bundles {self.period_start:%Y-%m-%d}: {self.minutes_used}/{self.minutes_included}"

    @property
    def minutes_left(self) -> int:
        return 0 if self.suspended else self.minutes_included - self.minutes_used

    @property
    def percent_used(self) -> int:
        if not self.minutes_included:
            return 0
        return min(100, self.minutes_used * 100 // self.minutes_included)
