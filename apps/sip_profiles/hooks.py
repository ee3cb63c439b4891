"""Where sip_profiles must reach a product above it, that product registers here (from its
AppConfig.ready()): an explicit, typed call, not a Django signal, and no import upwards.

- profile created reactions: called in the transaction that creates a profile, after its audit
  row and its channel charge (bundles: the US minute bundles asked for at creation are bought;
  an error rolls the whole creation back).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from apps.core.actor import Actor

if TYPE_CHECKING:
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
