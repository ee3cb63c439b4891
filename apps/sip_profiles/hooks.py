"""Where sip_profiles must reach a product above it, that product registers here (from its
AppConfig.ready()): an explicit, typed call, not a Django signal, and no import upwards.

- profile created reactions: called in the transaction that creates a profile, after its audit
  row and its channel charge (bundles: the US minute bundles asked for at creation are bought;
  an error rolls the whole creation back).
- profile created quotes: what those reactions will charge, for the price shown before the
  profile is created (bundles: the prorated price of the bundles asked for).
- provisioning per node (the edge): where each profile stands on each edge node, for the
  profile page and the API, read for many profiles at once (one query for a whole list).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from apps.core.actor import Actor

if TYPE_CHECKING:
    from apps.billing.quotes import Quote
    from apps.companies.models import Company
    from apps.sip_profiles.models import SipProfile


class ProfileCreatedReaction(Protocol):
    def __call__(self, *, actor: Actor, profile: SipProfile, us_minute_bundles: int, now: datetime) -> object: ...


_profile_created: list[ProfileCreatedReaction] = []


def profile_created_register(reaction: ProfileCreatedReaction) -> None:
    if reaction not in _profile_created:
        _profile_created.append(reaction)


def profile_created_run(*, actor: Actor, profile: SipProfile, us_minute_bundles: int, now: datetime) -> None:
    for reaction in _profile_created:
        reaction(actor=actor, profile=profile, us_minute_bundles=us_minute_bundles, now=now)


class ProfileCreatedQuote(Protocol):
    def __call__(
        self, *, company: Company, name: str, renewal_day: int, channels: int, us_minute_bundles: int, at: datetime
    ) -> Quote | None: ...


_profile_created_quotes: list[ProfileCreatedQuote] = []


def profile_created_quote_register(quote: ProfileCreatedQuote) -> None:
    if quote not in _profile_created_quotes:
        _profile_created_quotes.append(quote)


def profile_created_quote(
    *, company: Company, name: str, renewal_day: int, channels: int, us_minute_bundles: int, at: datetime
) -> list[Quote]:
    """The quotes of what the created reactions will charge (none for what they do not)."""
    found = (
        quote(
            company=company,
            name=name,
            renewal_day=renewal_day,
            channels=channels,
            us_minute_bundles=us_minute_bundles,
            at=at,
        )
        for quote in _profile_created_quotes
    )
    return [q for q in found if q is not None]


# --- Provisioning per edge node ---------------------------------------------------------


@dataclass(frozen=True)
class NodeProvisioning:
    """Where one profile stands on one edge node."""

    node: str
    role: str  # primary | secondary
    public_host: str
    state: str  # pending | synced | failed
    synced_at: datetime | None
    error: str  # why the last attempt failed ("" unless failed)
    attempts: int  # failed attempts since the last success


class ProvisioningProvider(Protocol):
    def __call__(self, profile_ids: Collection[int]) -> Mapping[int, list[NodeProvisioning]]: ...


_provisioning_provider: list[ProvisioningProvider] = []


def provisioning_provider_register(provider: ProvisioningProvider) -> None:
    """The edge tells how to read its per-node state (one provider; registering again replaces it)."""
    _provisioning_provider[:] = [provider]


def provisioning_of(profile_ids: Collection[int]) -> dict[int, list[NodeProvisioning]]:
    """{profile id: its state on each edge node}; empty lists when no edge is installed."""
    found = _provisioning_provider[0](profile_ids) if _provisioning_provider and profile_ids else {}
    return {pk: list(found.get(pk, [])) for pk in profile_ids}
