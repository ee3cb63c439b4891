"""The Channel peaks report: per UTC day and SIP profile, the most calls in progress at once
(answered calls, from their start to their end) against the channels the profile had that day,
the calls the edge refused at the channel limit, and per profile a plain recommendation (add,
drop or keep channels) with what it changes on the monthly bill at the channel price quotes use.

Peaks are read from the CDRs (a peak is not a sum, so the daily figures cannot give it): on
PostgreSQL one query sweeps each profile's day as +1 at a call's start and -1 at its end, a
running sum in a window function, a call that spans midnight cut at it so it counts on both
days. Queries: 5 whatever the month holds (profiles, channel changes, the price, the peaks,
the refused calls)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.translation import ngettext

from apps.billing.models import Price
from apps.cdrs.models import Cdr
from apps.companies.models import Company
from apps.reports.monthly.selectors import Month
from apps.sip_profiles.models import MAX_CHANNELS, MIN_CHANNELS, ChannelChange, SipProfile

# The edge ends every call after EDGE_MAX_CALL_SECONDS (4 hours, deploy/kamailio/kamailio.cfg):
# a call still in progress on the 1st started at most a day before, which bounds the scan of
# the CDRs' (company, started_at) index.
LONGEST_CALL = timedelta(days=1)
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


PEAKS_SQL = """
WITH calls AS (
    SELECT sip_profile_id AS profile_id, started_at AT TIME ZONE 'UTC' AS s, ended_at AT TIME ZONE 'UTC' AS e
    FROM {cdr}
    WHERE company_id = %(company)s AND disposition = 'answered' AND sip_profile_id IS NOT NULL
      AND started_at >= %(earliest)s AND started_at < %(end)s AND ended_at > %(start)s
      AND ended_at > started_at {profile}
), segments AS (
    -- A call is cut at each midnight it spans: one segment per day it was in progress.
    SELECT c.profile_id, d AS day_start, greatest(c.s, d) AS s, least(c.e, d + interval '1 day') AS e
    FROM calls c CROSS JOIN LATERAL generate_series(date_trunc('day', c.s), c.e, interval '1 day') AS d
    WHERE d >= %(first)s AND d < %(after)s
), events AS (
    SELECT profile_id, day_start, s AS at, 1 AS delta FROM segments WHERE e > s
    UNION ALL
    SELECT profile_id, day_start, e AS at, -1 AS delta FROM segments WHERE e > s
)
SELECT profile_id, day_start::date, max(running)
FROM (
    -- Ends sort before starts at the same instant: a call that ends as another starts
    -- never held a channel with it.
    SELECT profile_id, day_start,
           sum(delta) OVER (PARTITION BY profile_id, day_start ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS running
    FROM events
) sweep
GROUP BY profile_id, day_start
"""


def _peaks_postgresql(company: Company, month: Month, profile: SipProfile | None) -> dict[tuple[int, date], int]:
    params: dict[str, Any] = {
        "company": company.pk,
        "earliest": month.start - LONGEST_CALL,
        "start": month.start,
        "end": month.end,
        "first": datetime(month.first.year, month.first.month, 1),  # noqa: DTZ001 (UTC wall time)
        "after": datetime(month.after.year, month.after.month, 1),  # noqa: DTZ001
    }
    only = ""
    if profile is not None:
        only, params["profile"] = "AND sip_profile_id = %(profile)s", profile.pk
    sql = PEAKS_SQL.format(cdr=Cdr._meta.db_table, profile=only)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(profile_id, day): peak for profile_id, day, peak in cursor.fetchall()}


def _peaks_python(company: Company, month: Month, profile: SipProfile | None) -> dict[tuple[int, date], int]:
    """The same sweep in Python, for SQLite (the laptop's default database)."""
    calls = Cdr.objects.for_company(company).filter(
        disposition=Cdr.Disposition.ANSWERED,
        sip_profile__isnull=False,
        started_at__gte=month.start - LONGEST_CALL,
        started_at__lt=month.end,
        ended_at__gt=month.start,
    )
    if profile is not None:
        calls = calls.filter(sip_profile_id=profile.pk)
    events: dict[tuple[int, date], list[tuple[datetime, int]]] = defaultdict(list)
    for profile_id, started, ended in calls.values_list("sip_profile_id", "started_at", "ended_at"):
        day_start = datetime(started.year, started.month, started.day, tzinfo=UTC)
        while day_start < ended:
            s, e = max(started, day_start), min(ended, day_start + timedelta(days=1))
            if e > s and month.first <= day_start.date() < month.after:
                events[(profile_id, day_start.date())] += [(s, 1), (e, -1)]
            day_start += timedelta(days=1)
    peaks = {}
    for key, moments in events.items():
        running = best = 0
        for _at, delta in sorted(moments):
            running += delta
            best = max(best, running)
        peaks[key] = best
    return peaks


def _refused(company: Company, month: Month, profile: SipProfile | None) -> dict[tuple[int, date], tuple[int, int]]:
    """(calls refused at the channel limit, the most in one minute) per profile and day."""
    refused = Cdr.objects.for_company(company).filter(
        disposition=Cdr.Disposition.REFUSED,
        refusal_reason=Cdr.RefusalReason.CHANNEL_LIMIT,
        started_at__gte=month.start,
        started_at__lt=month.end,
        sip_profile__isnull=False,
    )
    if profile is not None:
        refused = refused.filter(sip_profile_id=profile.pk)
    per_minute = (
        refused.annotate(minute=TruncMinute("started_at", tzinfo=UTC))
        .values("sip_profile_id", "minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    out: dict[tuple[int, date], tuple[int, int]] = {}
    for row in per_minute:
        key = (row["sip_profile_id"], row["minute"].date())
        total, busiest = out.get(key, (0, 0))
        out[key] = (total + row["n"], max(busiest, row["n"]))
    return out


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
    if connection.vendor == "postgresql":
        peaks = _peaks_postgresql(company, month, profile)
    else:
        peaks = _peaks_python(company, month, profile)
    refused = _refused(company, month, profile)
    today = timezone.now().date()
    elapsed = len([d for d in month.days if d <= today])
    report = PeaksReport(month, company.currency, price)
    for p in profiles:
        days = []
        for day, channels in zip(month.days, _channels_per_day(p, changes[p.pk], month), strict=True):
            total, busiest = refused.get((p.pk, day), (0, 0))
            days.append(PeakDay(day, channels, peaks.get((p.pk, day), 0), total, busiest))
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
