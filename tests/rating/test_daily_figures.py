"""The daily call figures that reports read equal the calls: after several rating runs in
batches of every size, each (profile, UTC day, destination, direction, refusal) row is what a
plain computation from the CDRs, their ratings and the decks finds; a batch that fails leaves
no figure behind; and `rating_daily_rebuild` computes the same rows again from the ratings.
The roll-ups reports read (per month, profile and destination; per day and profile) are
always those rows summed. (The engine never rates a CDR twice, so there is no re-rating to
follow.)"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from apps.cdrs.models import Cdr, CdrRating, DailyCalls, MonthlyCalls, PendingCdr, ProfileDayCalls
from apps.rating import engine
from apps.rating.engine import rate_pending
from tests.rating.factories import Call, _reference_rate_for, cdr_for, queue_calls
from tests.rating.test_exactly_once import World, make_world

pytestmark = pytest.mark.django_db

Row = tuple[Any, ...]


def expected_figures(world: World) -> dict[Row, list[Any]]:
    """The figures, summed here from every rated CDR and its rating; the destination is the
    longest prefix of the deck in force (the reference's own naive scan of the world's decks)."""
    sums: dict[Row, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0), 0])
    for cdr in Cdr.objects.filter(rating__isnull=False).select_related("rating", "company"):
        rating = cdr.rating
        country = kind = ""
        if cdr.direction == "outbound":
            call = Call(0, 0, 0, cdr.company.currency, cdr.callee, cdr.started_at, 0)
            rate = _reference_rate_for(world.decks, call)
            if rate is not None:
                country, kind = rate.country, rate.destination_class
        key = (
            cdr.company_id,
            cdr.started_at.date(),
            cdr.sip_profile_id or 0,
            cdr.direction,
            country,
            kind,
            cdr.refusal_reason,
        )
        row = sums[key]
        row[0] += 1
        row[1] += cdr.answered_at is not None
        row[2] += cdr.billable_seconds
        row[3] += rating.bundle_seconds
        row[4] += rating.bundle_minutes
        row[5] += rating.cost
        row[6] += rating.status == CdrRating.Status.ERROR
    return dict(sums)


def actual_figures() -> dict[Row, list[Any]]:
    return {
        row[:7]: list(row[7:])
        for row in DailyCalls.objects.values_list(
            "company_id",
            "day",
            "sip_profile_id",
            "direction",
            "country",
            "destination_class",
            "refusal_reason",
            "calls",
            "answered",
            "billable_seconds",
            "bundle_seconds",
            "bundle_minutes",
            "cost",
            "unrated",
        )
    }


SUMS = ("calls", "answered", "billable_seconds", "bundle_seconds", "bundle_minutes", "cost", "unrated")


def assert_rollups_agree() -> None:
    """The roll-ups equal the daily figures, summed here by month and by day and profile."""
    monthly: dict[Row, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0), 0])
    per_day: dict[Row, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0), 0, 0, 0])
    for key, sums in actual_figures().items():
        company, day, profile, direction, country, kind, reason = key
        for into, group, values in (
            (monthly, (company, day.replace(day=1), profile, direction, country, kind, reason), sums),
            (
                per_day,
                (company, day, profile),
                [*sums, sums[0] if reason else 0, sums[0] * (reason == "channel_limit")],
            ),
        ):
            row = into[group]
            for n, value in enumerate(values):
                row[n] += value
    keys = ("company_id", "month", "sip_profile_id", "direction", "country", "destination_class", "refusal_reason")
    assert {r[:7]: list(r[7:]) for r in MonthlyCalls.objects.values_list(*keys, *SUMS)} == dict(monthly)
    day_keys = ("company_id", "day", "sip_profile_id")
    day_sums = (*SUMS, "refused", "refused_at_channel_limit")
    assert {r[:3]: list(r[3:]) for r in ProfileDayCalls.objects.values_list(*day_keys, *day_sums)} == dict(per_day)


def refused(calls: list[Call], reason: str) -> None:
    """Queue `calls` as calls the edge refused (`reason`), as its CDR import writes them."""
    cdrs = []
    for call in calls:
        cdr = cdr_for(replace(call, answered=False, billable=0))
        cdr.disposition, cdr.refusal_reason, cdr.sip_code = "refused", reason, 486
        cdrs.append(cdr)
    made = Cdr.objects.bulk_create(cdrs)
    PendingCdr.objects.bulk_create([PendingCdr(cdr_id=c.pk) for c in made])


def test_the_daily_figures_equal_the_calls_after_several_rating_runs() -> None:
    world = make_world(minutes=(40, 5000))
    first = world.calls(300)
    queue_calls(first)
    run = rate_pending(batch_size=37, max_batches=3)
    assert run.more
    assert run.cdrs == 111
    assert actual_figures() == expected_figures(world)

    rate_pending(batch_size=50)
    second = world.calls(200, first_edge_id=1000, seed=9)
    queue_calls(second)
    # Calls the edge refused at the channel limit, and for credit, on days that already have
    # figures; a number no rate covers (rated as an error, counted as unrated).
    refused(world.calls(12, first_edge_id=2000, seed=3), "channel_limit")
    refused(world.calls(5, first_edge_id=3000, seed=4), "no_credit")
    profile_id, company_id, currency = world.parties[0]
    queue_calls([Call(4000, profile_id, company_id, currency, "+99912345", first[0].started_at, 30)])
    rate_pending(batch_size=64)
    rate_pending(batch_size=64)

    assert not PendingCdr.objects.exists()
    figures = actual_figures()
    assert figures == expected_figures(world)
    # The run covered what the figures must tell apart.
    assert sum(f[0] for k, f in figures.items() if k[6] == "channel_limit") == 12
    assert sum(f[0] for k, f in figures.items() if k[6] == "no_credit") == 5
    assert sum(f[6] for f in figures.values()) >= 1  # the uncovered number
    assert sum(f[4] for f in figures.values()) > 0  # bundle minutes
    assert {k[3] for k in figures} == {"outbound", "inbound"}
    assert len({k[1] for k in figures}) > 30  # days
    # The totals are the ledger's: every rated call's cost, once.
    assert sum(f[5] for f in figures.values()) == sum(CdrRating.objects.values_list("cost", flat=True))
    assert sum(f[0] for f in figures.values()) == Cdr.objects.count() == 300 + 200 + 12 + 5 + 1
    assert_rollups_agree()


def test_a_batch_that_fails_leaves_no_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world()
    queue_calls(world.calls(40))
    rate_pending(batch_size=20, max_batches=1)
    before = actual_figures()
    assert before

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the job died after the figures were written")

    # The last write of a batch, after its figures: the whole batch rolls back.
    monkeypatch.setattr(engine, "_add_minutes", fail)
    with pytest.raises(RuntimeError):
        rate_pending(batch_size=20)
    assert actual_figures() == before
    assert PendingCdr.objects.count() == 20
    assert_rollups_agree()

    monkeypatch.undo()
    rate_pending(batch_size=20)
    assert actual_figures() == expected_figures(world)


def test_the_rebuild_command_computes_the_same_figures_from_the_ratings() -> None:
    world = make_world(minutes=(30, 30))
    calls = world.calls(150)
    queue_calls(calls)
    refused(world.calls(6, first_edge_id=500, seed=2), "channel_limit")
    rate_pending(batch_size=25)
    rated = actual_figures()
    assert rated == expected_figures(world)

    # Figures lost or wrong (a restore, a bug): the command recomputes them all.
    DailyCalls.objects.filter(day=min(k[1] for k in rated)).delete()
    DailyCalls.objects.update(calls=999)
    MonthlyCalls.objects.update(calls=999)
    ProfileDayCalls.objects.all().delete()
    call_command("rating_daily_rebuild", chunk=40, verbosity=0)
    assert actual_figures() == rated
    assert_rollups_agree()

    # And later batches add to the rebuilt rows.
    more = world.calls(30, first_edge_id=900, seed=8)
    queue_calls([replace(c, started_at=c.started_at + timedelta(minutes=1)) for c in more])
    rate_pending()
    assert actual_figures() == expected_figures(world)
    assert_rollups_agree()
