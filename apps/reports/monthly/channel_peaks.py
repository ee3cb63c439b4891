"""The Channel peaks report: per UTC day and SIP profile, the most calls in progress at once
(answered calls, from their start to their end) against the channels the profile had that day,
the calls the edge refused at the channel limit, and per profile a plain recommendation (add,
drop or keep channels) with what it changes on the monthly bill at the channel price quotes use.

Peaks are read from the daily channel peaks (apps.cdrs.models.ChannelPeakDay: a peak is not a
sum, so the rating batch recomputes the days its calls touched by sweeping their CDRs, see
apps.cdrs.peaks), the calls refused at the limit from the daily figures per profile
(ProfileDayCalls): a month is read in a few thousand rows whatever the calls. Queries: 5
whatever the month holds (profiles, channel changes, the price, the peaks, the refused calls)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import ngettext

from apps.billing.models import Price
from apps.cdrs.models import ChannelPeakDay, ProfileDayCalls
from apps.companies.models import Company
from apps.reports.monthly.selectors import Month
from apps.sip_profiles.models import MAX_CHANNELS, MIN_CHANNELS, ChannelChange, SipProfile

# Peaks at the cap on this many days (with no call refused) earn one more channel.
AT_CAP_DAYS = 3
# A drop is advised only from this many days of figures.
MIN_DAYS_TO_DROP = 7

Action = str  # "add", "drop" or "keep"


@dataclass
class PeakDay:
    day: date
    channels: int  # the most the profile had that day (0: it did not exist yet)
    peak: int = 0
    refused_at_limit: int = 0
    # The most calls refused at the limit within one minute: how far past the cap demand went.
    busiest_refused_minute: int = 0

    @property
    def at_cap(self) -> bool:
        return self.channels > 0 and (self.peak >= self.channels or self.refused_at_limit > 0)


@dataclass(frozen=True)
class Recommendation:
    action: Action
    change: int  # channels to add (positive) or drop (negative); 0 to keep
    channels: int  # the channels it advises
    text: str
    monthly_change: Decimal | None  # what it changes on the monthly bill; None: no channel price set


@dataclass
class ProfilePeaks:
    profile: SipProfile
    days: list[PeakDay]  # every day of the month
    first: int = 0  # the index of the first day judged (the first the profile had channels)
    counted: int = 0  # the days judged: from `first` up to today
    peak: int = 0
    at_cap_days: int = 0
    refused_at_limit: int = 0
    recommendation: Recommendation | None = None


@dataclass
class PeaksReport:
    month: Month
    currency: str
    channel_price: Decimal | None
    profiles: list[ProfilePeaks] = field(default_factory=list)

    @property
    def chart_profile(self) -> ProfilePeaks | None:
        """The profile the chart shows: the one nearest its cap (the most days at it)."""
        if not self.profiles:
            return None
        return min(self.profiles, key=lambda p: (-p.at_cap_days, -p.refused_at_limit, -p.peak, p.profile.name))


def _peaks(company: Company, month: Month, profile: SipProfile | None) -> dict[tuple[int, date], tuple[int, int]]:
    """(the peak, the most calls refused at the limit in one minute) per profile and day, from
    the daily channel peaks the rating batch keeps (apps.cdrs.peaks)."""
    rows = ChannelPeakDay.objects.for_company(company).filter(day__gte=month.first, day__lt=month.after)
    if profile is not None:
        rows = rows.filter(sip_profile_id=profile.pk)
    return {
        (profile_id, day): (peak, busiest)
        for profile_id, day, peak, busiest in rows.values_list(
            "sip_profile_id", "day", "peak", "busiest_refused_minute"
        ).order_by()
    }


def _refused(company: Company, month: Month, profile: SipProfile | None) -> dict[tuple[int, date], int]:
    """The calls refused at the channel limit per profile and day, from the daily figures."""
    rows = ProfileDayCalls.objects.for_company(company).filter(
        day__gte=month.first, day__lt=month.after, refused_at_channel_limit__gt=0
    )
    if profile is not None:
        rows = rows.filter(sip_profile_id=profile.pk)
    return {
        (profile_id, day): refused
        for profile_id, day, refused in rows.values_list("sip_profile_id", "day", "refused_at_channel_limit").order_by()
    }


def _channels_per_day(profile: SipProfile, changes: list[ChannelChange], month: Month) -> list[int]:
    """The most channels the profile had on each day of the month (0 before it had any)."""

    # The count at a moment: the last change's `after` before it, else the first change's
    # `before` (a profile is created with a change from 0), else the channels it has now.
    def at(moment: datetime) -> int:
        current = changes[0].before if changes else profile.channels
        for change in changes:
            if change.changed_at > moment:
                break
            current = change.after
        return current

    out = []
    for day in month.days:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        during = [c.after for c in changes if start < c.changed_at < end]
        out.append(max([at(start), *during]))
    return out


def _plural_channels(n: int) -> str:
    return ngettext("%(n)d channel", "%(n)d channels", n) % {"n": n}


def recommend(line: ProfilePeaks, *, price: Decimal | None) -> Recommendation:
    """Add when demand went past the channels the profile has now (the peak plus the most calls
    refused at the limit in one minute, on a day at the cap), or when calls peaked at the cap on
    AT_CAP_DAYS days or more; drop to the highest peak (never below the profile's bundles, each
    of which needs a channel) when the peak stayed under the channels for MIN_DAYS_TO_DROP days
    or more; else keep."""
    profile, now = line.profile, line.profile.channels
    judged = line.days[line.first : line.first + line.counted]
    days = ngettext("%(n)d day", "%(n)d days", line.counted) % {"n": line.counted}
    demand = max((d.peak + d.busiest_refused_minute for d in judged if d.at_cap), default=0)
    add = max(demand - now, 0)
    if add == 0 and line.at_cap_days >= AT_CAP_DAYS and line.peak >= now:
        add = 1
    add = min(add, MAX_CHANNELS - now)
    if add > 0:
        why = f"calls peaked at the cap on {line.at_cap_days} of {days}"
        if line.refused_at_limit:
            why += ngettext(
                ", %(n)d call refused at the limit", ", %(n)d calls refused at the limit", line.refused_at_limit
            ) % {"n": line.refused_at_limit}
        action, change, text = "add", add, f"Add {_plural_channels(add)}: {why}."
    else:
        floor = max(line.peak, profile.us_minute_bundles, MIN_CHANNELS)
        if line.counted >= MIN_DAYS_TO_DROP and floor < now:
            action, change = "drop", floor - now
            text = f"Drop {_plural_channels(-change)}: never above {line.peak} in {days}"
            if profile.us_minute_bundles > max(line.peak, MIN_CHANNELS):
                text += f" (its {profile.us_minute_bundles} bundles need a channel each)"
            text += "."
        else:
            action, change = "keep", 0
            text = f"Keep {_plural_channels(now)}: calls peaked at {line.peak}"
            text += f", at the cap on {line.at_cap_days} of {days}." if line.at_cap_days else f" in {days}."
    monthly = None if price is None else (price * change).quantize(Decimal("0.0001"))
    return Recommendation(action, change, now + change, text, monthly)


def peaks_report(*, company: Company, month: Month, profile: SipProfile | None = None) -> PeaksReport:
    """Every live profile's (or one's) peaks per day of the month and its recommendation.
    Queries: 5."""
    profiles = list(SipProfile.objects.for_company(company).live().order_by("name", "id"))
    if profile is not None:
        profiles = [p for p in profiles if p.pk == profile.pk]
    changes: dict[int, list[ChannelChange]] = defaultdict(list)
    for change in ChannelChange.objects.filter(
        profile__company=company, profile_id__in=[p.pk for p in profiles], changed_at__lt=month.end
    ).order_by("changed_at", "id"):
        changes[change.profile_id].append(change)
    price = (
        Price.objects.filter(kind=Price.Kind.CHANNEL_MONTHLY, currency=company.currency)
        .values_list("amount", flat=True)
        .first()
    )
    peaks = _peaks(company, month, profile)
    refused = _refused(company, month, profile)
    today = timezone.now().date()
    elapsed = len([d for d in month.days if d <= today])
    report = PeaksReport(month, company.currency, price)
    for p in profiles:
        days = []
        for day, channels in zip(month.days, _channels_per_day(p, changes[p.pk], month), strict=True):
            peak, busiest = peaks.get((p.pk, day), (0, 0))
            days.append(PeakDay(day, channels, peak, refused.get((p.pk, day), 0), busiest))
        line = ProfilePeaks(p, days)
        # The days judged: from the first the profile had channels, up to today.
        line.first = next((n for n, d in enumerate(days) if d.channels > 0), elapsed)
        line.counted = max(elapsed - line.first, 0)
        judged = days[line.first : elapsed]
        line.peak = max((d.peak for d in judged), default=0)
        line.at_cap_days = sum(1 for d in judged if d.at_cap)
        line.refused_at_limit = sum(d.refused_at_limit for d in judged)
        line.recommendation = recommend(line, price=price)
        report.profiles.append(line)
    return report
