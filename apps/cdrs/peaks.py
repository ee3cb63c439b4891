"""The daily channel peaks (apps.cdrs.models.ChannelPeakDay) that the Channel peaks report reads:
per company, UTC day and SIP profile, the most answered calls in progress at once and the most
calls refused at the channel limit within one minute.

A peak is not a sum, so it cannot be added to like the daily figures: the rating batch
recomputes, in its own transaction, the (profile, day) pairs its calls touched (every day an
answered call was in progress, the day of a call refused at the limit) from those pairs' calls
only, by one set-based statement on PostgreSQL (a sweep: +1 at a call's start, -1 at its end,
a running sum in a window function, a call that spans midnight cut at it so it counts on both
days). The pairs' calls are found through the CDRs' (sip_profile_id, started_at) index, looking
back LONGEST_CALL for calls still in progress at the day's start. SQLite (a laptop) runs the
same sweep in Python. `peaks_rebuild` recomputes every pair from the CDRs (the rebuild command,
the migration that added the table).

A recompute reads every CDR of its pairs, rated yet or not (a call still queued holds its
channel all the same); the batch that rates it recomputes its pairs again, so once the queue is
empty every peak is the sweep of all the calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection

from apps.cdrs.models import Cdr, ChannelPeakDay

# The edge ends every call after EDGE_MAX_CALL_SECONDS (4 hours, deploy/kamailio/kamailio.cfg);
# a staff CSV back-fill is not bound by it, so a day's look-back allows for more: a call still
# in progress at a day's start started at most a day before.
LONGEST_CALL = timedelta(days=1)

ANSWERED = Cdr.Disposition.ANSWERED.value
REFUSED = Cdr.Disposition.REFUSED.value
CHANNEL_LIMIT = Cdr.RefusalReason.CHANNEL_LIMIT.value

Pair = tuple[int, int, date]  # (company id, profile id, UTC day)

# The (company, profile, day) pairs of the CDRs picked by {where}: every day an answered call
# was in progress (at most LONGEST_CALL past its start), the day a call was refused at the limit.
_PAIRS = f"""
SELECT DISTINCT c.company_id, c.sip_profile_id AS profile_id, d::date AS day
FROM {{cdr}} c CROSS JOIN LATERAL generate_series(
    date_trunc('day', c.started_at AT TIME ZONE 'UTC'),
    CASE WHEN c.disposition = '{ANSWERED}'
         THEN least(c.ended_at, c.started_at + interval '1 day') AT TIME ZONE 'UTC'
         ELSE c.started_at AT TIME ZONE 'UTC' END,
    interval '1 day') AS d
WHERE c.sip_profile_id IS NOT NULL
  AND ((c.disposition = '{ANSWERED}' AND c.ended_at > c.started_at) OR c.refusal_reason = '{CHANNEL_LIMIT}')
  AND {{where}}
"""  # noqa: S608 (constant names and values)

_RECOMPUTE = f"""
WITH pairs AS MATERIALIZED (
    SELECT company_id, profile_id, day, day::timestamp AT TIME ZONE 'UTC' AS day_start
    FROM ({_PAIRS}) p {{only}}
), segments AS (
    -- Each pair's calls by an index range scan of (sip_profile_id, started_at): OFFSET 0 keeps
    -- the planner from flattening the subquery into a hash join that reads every call of the
    -- pairs' profiles (it misjudges how few pairs there are).
    SELECT p.company_id, p.profile_id, p.day,
           greatest(c.started_at, p.day_start) AS s, least(c.ended_at, p.day_start + interval '1 day') AS e
    FROM pairs p CROSS JOIN LATERAL (
        SELECT started_at, ended_at FROM {{cdr}}
        WHERE sip_profile_id = p.profile_id AND company_id = p.company_id
          AND started_at >= p.day_start - interval '{LONGEST_CALL.days} day'
          AND started_at < p.day_start + interval '1 day'
          AND ended_at > p.day_start AND ended_at > started_at AND disposition = '{ANSWERED}'
        OFFSET 0
    ) c
), events AS (
    SELECT company_id, profile_id, day, s AS at, 1 AS delta FROM segments
    UNION ALL
    SELECT company_id, profile_id, day, e AS at, -1 AS delta FROM segments
), peaks AS (
    -- Ends sort before starts at the same instant: a call that ends as another starts
    -- never held a channel with it.
    SELECT company_id, profile_id, day, max(running) AS peak
    FROM (
        SELECT company_id, profile_id, day,
               sum(delta) OVER (PARTITION BY profile_id, day ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS running
        FROM events
    ) sweep
    GROUP BY company_id, profile_id, day
), minutes AS (
    SELECT p.company_id, p.profile_id, p.day, count(*) AS n
    FROM pairs p JOIN {{cdr}} c
      ON c.sip_profile_id = p.profile_id AND c.company_id = p.company_id
     AND c.started_at >= p.day_start AND c.started_at < p.day_start + interval '1 day'
     AND c.disposition = '{REFUSED}' AND c.refusal_reason = '{CHANNEL_LIMIT}'
    GROUP BY p.company_id, p.profile_id, p.day, date_trunc('minute', c.started_at AT TIME ZONE 'UTC')
), busiest AS (
    SELECT company_id, profile_id, day, max(n) AS n FROM minutes GROUP BY company_id, profile_id, day
)
INSERT INTO {{table}} AS t (company_id, day, sip_profile_id, peak, busiest_refused_minute)
SELECT p.company_id, p.day, p.profile_id, coalesce(k.peak, 0), coalesce(b.n, 0)
FROM pairs p
LEFT JOIN peaks k ON (k.company_id, k.profile_id, k.day) = (p.company_id, p.profile_id, p.day)
LEFT JOIN busiest b ON (b.company_id, b.profile_id, b.day) = (p.company_id, p.profile_id, p.day)
ORDER BY 1, 2, 3
ON CONFLICT (company_id, day, sip_profile_id)
DO UPDATE SET peak = EXCLUDED.peak, busiest_refused_minute = EXCLUDED.busiest_refused_minute
"""  # noqa: S608 (constant names and values)


def peaks_recompute(*, cdr_ids: Sequence[int]) -> None:
    """Recompute the peaks of every (profile, day) the CDRs `cdr_ids` touch, in the caller's
    transaction (the rating batch's, which holds the rating lock: no two writers race on a row)."""
    if not cdr_ids:
        return
    if connection.vendor == "postgresql":
        # The batch's ids as one array parameter: the pairs come from index probes on the CDR ids.
        _recompute_postgresql("c.id = ANY(%(ids)s)", {"ids": list(cdr_ids)})
        return
    pairs: set[Pair] = set()
    for chunk in _chunks(cdr_ids, 10_000):
        pairs |= _pairs_of(Cdr.objects.filter(id__in=chunk))
    _recompute_python(pairs)


def peaks_rebuild(*, since: date | None = None) -> None:
    """Recompute every peak from the CDRs (of the days from `since` on), in the caller's
    transaction, which has deleted those rows and holds the rating lock."""
    earliest = datetime(since.year, since.month, since.day, tzinfo=UTC) - LONGEST_CALL if since else None
    if connection.vendor == "postgresql":
        if since is None:
            _recompute_postgresql("TRUE", {})
        else:
            _recompute_postgresql("c.started_at >= %(earliest)s", {"earliest": earliest, "since": since})
        return
    calls = Cdr.objects.filter(started_at__gte=earliest) if earliest else Cdr.objects.all()
    pairs = _pairs_of(calls)
    _recompute_python({p for p in pairs if since is None or p[2] >= since})


def recompute_sql(where: str, *, since: bool = False) -> str:
    """The PostgreSQL statement recomputing the pairs of the CDRs `where` picks (alias c), of
    the days from %(since)s on if `since` (benchmarks/reports.py EXPLAINs it)."""
    return _RECOMPUTE.format(
        cdr=Cdr._meta.db_table,
        table=ChannelPeakDay._meta.db_table,
        where=where,
        only="WHERE day >= %(since)s" if since else "",
    )


def _recompute_postgresql(where: str, params: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(recompute_sql(where, since="since" in params), params)


def _chunks(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for n in range(0, len(ids), size):
        yield ids[n : n + size]


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _pairs_of(calls: Any) -> set[Pair]:
    """The pairs the calls touch (as _PAIRS, in Python)."""
    pairs: set[Pair] = set()
    rows = (
        calls.filter(sip_profile__isnull=False)
        .filter(disposition__in=[ANSWERED, REFUSED])
        .values_list("company_id", "sip_profile_id", "started_at", "ended_at", "disposition", "refusal_reason")
    )
    for company_id, profile_id, started, ended, disposition, reason in rows:
        if disposition == REFUSED:
            if reason == CHANNEL_LIMIT:
                pairs.add((company_id, profile_id, started.astimezone(UTC).date()))
            continue
        if ended <= started:
            continue
        day = started.astimezone(UTC).date()
        last = min(ended, started + LONGEST_CALL)
        while _day_start(day) <= last:
            pairs.add((company_id, profile_id, day))
            day += timedelta(days=1)
    return pairs


def _recompute_python(pairs: set[Pair]) -> None:
    """The sweep of _RECOMPUTE in Python, for SQLite: one query for the pairs' calls, one upsert."""
    if not pairs:
        return
    wanted: dict[tuple[int, date], int] = {(profile, day): company for company, profile, day in pairs}
    days = [day for _c, _p, day in pairs]
    calls = Cdr.objects.filter(
        sip_profile_id__in={profile for _c, profile, _d in pairs},
        started_at__gte=_day_start(min(days)) - LONGEST_CALL,
        started_at__lt=_day_start(max(days)) + timedelta(days=1),
    ).filter(disposition__in=[ANSWERED, REFUSED])
    events: dict[tuple[int, date], list[tuple[datetime, int]]] = defaultdict(list)
    per_minute: dict[tuple[int, date], dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for company_id, profile_id, started, ended, disposition, reason in calls.values_list(
        "company_id", "sip_profile_id", "started_at", "ended_at", "disposition", "refusal_reason"
    ):
        if disposition == REFUSED:
            key = (profile_id, started.astimezone(UTC).date())
            if reason == CHANNEL_LIMIT and wanted.get(key) == company_id:
                per_minute[key][started.replace(second=0, microsecond=0)] += 1
            continue
        day_start = _day_start(started.astimezone(UTC).date())
        while day_start < ended:
            s, e = max(started, day_start), min(ended, day_start + timedelta(days=1))
            key = (profile_id, day_start.date())
            if e > s and wanted.get(key) == company_id and started >= day_start - LONGEST_CALL:
                events[key] += [(s, 1), (e, -1)]
            day_start += timedelta(days=1)
    rows = []
    for (profile_id, day), company_id in sorted(wanted.items()):
        running = best = 0
        for _at, delta in sorted(events.get((profile_id, day), ())):
            running += delta
            best = max(best, running)
        busiest = max(per_minute[(profile_id, day)].values(), default=0) if (profile_id, day) in per_minute else 0
        rows.append((company_id, day.isoformat(), profile_id, best, busiest))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {ChannelPeakDay._meta.db_table}"  # noqa: S608 (constant names)
            " (company_id, day, sip_profile_id, peak, busiest_refused_minute) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (company_id, day, sip_profile_id)"
            " DO UPDATE SET peak = excluded.peak, busiest_refused_minute = excluded.busiest_refused_minute",
            rows,
        )
