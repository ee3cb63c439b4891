"""Reads of the rating app: which numbers are never callable, the deck in force, and the
longest-prefix match. The SIP edge and the rating engine call these."""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import phonenumbers
from django.db.models import Q, QuerySet, Subquery
from django.utils import timezone
from phonenumbers import NumberParseException, PhoneNumberType, shortnumberinfo

from apps.core.exceptions import ApplicationError
from apps.core.phone import e164, parse_number
from apps.rating.models import NEVER_PRICED, BlockedPrefix, DestinationClass, Rate, RateDeck

_SEPARATORS = re.compile(r"[\s\-().]")


@dataclass(frozen=True)
class Blocked:
    """Why a number is never callable. `prefix` is the staff rule that matched, if any."""

    kind: str
    reason: str
    prefix: str = ""

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class RateMatch:
    number: str
    rate: Rate

    @property
    def deck(self) -> RateDeck:
        return self.rate.deck


def _prefixes(digits: str) -> list[str]:
    return [digits[:length] for length in range(1, len(digits) + 1)]


def number_blocked(e164_or_dialled: str, *, region: str | None) -> Blocked | None:
    """Why the number may never be called, or None if nothing forbids it.

    `e164_or_dialled` is "+1 900 555 0100" or what a caller in `region` dialled ("911",
    "0", "020 7946 0958"). The staff list (BlockedPrefix) is asked first, in one query,
    then phonenumbers' metadata: emergency numbers, valid short numbers (N11, 118 xxx…)
    and premium-rate ranges, so a country missing from the list is still covered.
    """
    text = _SEPARATORS.sub("", e164_or_dialled or "")
    region = (region or "").upper() or None
    international = text.startswith("+")
    dialled = "" if international else text
    parsed = None
    with contextlib.suppress(NumberParseException):
        parsed = phonenumbers.parse(text, None if international else region)
    if parsed is not None and not international and not phonenumbers.is_possible_number(parsed):
        # A short code ("999" read in GB is "+44999"): only the dialled rules apply to it.
        parsed = None
    full = e164(parsed) if parsed is not None else (text if international else "")

    # The rules that could match: "+" prefixes of the E.164 form, and dialled prefixes of
    # the caller's country or of every country. One query on a table of a few dozen rows.
    condition = Q(prefix__in=["+" + p for p in _prefixes(full[1:])]) if full else Q(pk__in=[])
    if dialled:
        countries = [BlockedPrefix.ANY_COUNTRY, *([region] if region else [])]
        condition |= Q(country__in=countries, prefix__in=_prefixes(dialled))
    candidates = list(BlockedPrefix.objects.filter(condition).values_list("prefix", "exact", "kind", "reason"))
    # The longest matching rule wins; an exact rule only for the whole string.
    for prefix, exact, kind, reason in sorted(candidates, key=lambda c: -len(c[0])):
        target = full if prefix.startswith("+") else dialled
        if not exact or target == prefix:
            return Blocked(kind=kind, reason=reason, prefix=prefix)

    if dialled and region:
        if phonenumbers.is_emergency_number(dialled, region):
            return Blocked(kind=BlockedPrefix.Kind.EMERGENCY, reason=f"Emergency number ({dialled})")
        short = None
        with contextlib.suppress(NumberParseException):
            short = phonenumbers.parse(dialled, region)
        if short is not None and shortnumberinfo.is_valid_short_number_for_region(short, region):
            return Blocked(kind=BlockedPrefix.Kind.SPECIAL_SERVICE, reason=f"Special service short code ({dialled})")
    if parsed is not None and phonenumbers.number_type(parsed) == PhoneNumberType.PREMIUM_RATE:
        return Blocked(kind=BlockedPrefix.Kind.PREMIUM_RATE, reason=f"Premium-rate number ({e164(parsed)})")
    return None


def _active(*, currency: str, at: datetime | None) -> QuerySet[RateDeck]:
    return RateDeck.objects.filter(
        currency=currency, status=RateDeck.Status.ACTIVE, effective_from__lte=at or timezone.now()
    ).order_by("-effective_from")


def deck_in_force(*, currency: str, at: datetime | None = None) -> RateDeck | None:
    """The latest active deck of the currency that has taken effect at `at` (now)."""
    return _active(currency=currency, at=at).first()


def rate_for(*, digits: str, currency: str, at: datetime | None = None) -> Rate | None:
    """The longest-prefix match of E.164 `digits` (no "+") in the deck in force at `at`.

    One query: the deck is a subquery, and `prefix IN (every prefix of the digits)` uses the
    (deck, prefix) unique index. The candidates are all prefixes of one string, so the
    longest is also the greatest in text order: ORDER BY prefix DESC LIMIT 1.
    """
    deck = _active(currency=currency, at=at).values("pk")[:1]
    return (
        Rate.objects.filter(deck=Subquery(deck), prefix__in=_prefixes(digits[:15]))
        .select_related("deck")
        .order_by("-prefix")
        .first()
    )


def rate_lookup(*, number: str, currency: str, region: str | None, at: datetime | None = None) -> RateMatch | Blocked:
    """What a call to `number` costs at `at`, or why it may never be called.

    Raises ApplicationError on the "number" field for a number that is not valid, and
    (code "no_rate", 404) when no deck in force prices it.
    """
    blocked = number_blocked(number, region=region)
    if blocked is not None:
        return blocked
    parsed = parse_number(number, region=region, field="number")
    full = e164(parsed)
    rate = rate_for(digits=full[1:], currency=currency, at=at)
    if rate is None:
        error = ApplicationError(
            f"No {currency} rate covers {full}."
            if deck_in_force(currency=currency, at=at) is not None
            else f"No {currency} rate deck is in force at that time.",
            field="number",
            code="no_rate",
        )
        error.status_code = 404
        raise error
    if rate.destination_class in NEVER_PRICED:
        # A deck may list these ranges too; they are refused all the same, never priced.
        kind = {
            DestinationClass.EMERGENCY: BlockedPrefix.Kind.EMERGENCY,
            DestinationClass.PREMIUM: BlockedPrefix.Kind.PREMIUM_RATE,
        }.get(DestinationClass(rate.destination_class), BlockedPrefix.Kind.SPECIAL_SERVICE)
        return Blocked(kind=kind, reason=f"{rate.get_destination_class_display()} number ({rate.destination})")
    return RateMatch(number=full, rate=rate)


def call_destinations(calls: Sequence[tuple[str, str, datetime]]) -> list[tuple[str, Decimal] | None]:
    """For each (currency, rate prefix, started_at) of a rated call: the destination's name and
    the price per minute of that prefix in the deck that was in force when the call started
    (retired decks too: they were in force then); None without a prefix. One query for a page
    of calls (the apps.cdrs Calls list registers this in RatingConfig.ready())."""
    currencies = {currency for currency, prefix, _ in calls if prefix}
    prefixes = {prefix for _, prefix, _ in calls if prefix}
    if not prefixes:
        return [None] * len(calls)
    found: dict[tuple[str, str], list[tuple[datetime, str, Decimal]]] = {}
    rates = Rate.objects.filter(
        deck__currency__in=currencies,
        deck__status__in=[RateDeck.Status.ACTIVE, RateDeck.Status.RETIRED],
        deck__effective_from__isnull=False,
        prefix__in=prefixes,
    ).values_list("deck__currency", "prefix", "deck__effective_from", "destination", "price_per_minute")
    for currency, prefix, effective_from, destination, price in rates:
        assert effective_from is not None  # filtered above
        found.setdefault((currency, prefix), []).append((effective_from, destination, price))
    for versions in found.values():
        versions.sort(key=lambda version: version[0])
    answers: list[tuple[str, Decimal] | None] = []
    for currency, prefix, started_at in calls:
        versions = found.get((currency, prefix), [])
        # The latest version that had taken effect when the call started.
        index = bisect.bisect_right([v[0] for v in versions], started_at) - 1
        answers.append((versions[index][1], versions[index][2]) if prefix and index >= 0 else None)
    return answers
