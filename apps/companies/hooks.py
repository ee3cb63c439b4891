"""Where the tenant app must ask the products above it, they register here (from their
AppConfig.ready()): an explicit, typed call, not a Django signal, and no import upwards.

- role change checks: called under the membership's row lock before a member's role changes;
  one raises ApplicationError to refuse (business accounts: a member whose account is routed
  to a SIP profile cannot become an owner or admin);
- verification lost reactions: called in the transaction that takes a company's verification
  away (caller ID: its own landlines come off every profile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from apps.core.actor import Actor

if TYPE_CHECKING:
    from apps.companies.models import Company, Membership


class RoleChangeCheck(Protocol):
    def __call__(self, *, membership: Membership, role: str) -> None: ...


class VerificationLostReaction(Protocol):
    def __call__(self, *, actor: Actor, company: Company) -> object: ...


_role_change_checks: list[RoleChangeCheck] = []
_verification_lost: list[VerificationLostReaction] = []


def role_change_check_register(check: RoleChangeCheck) -> None:
    if check not in _role_change_checks:
        _role_change_checks.append(check)


def verification_lost_register(reaction: VerificationLostReaction) -> None:
    if reaction not in _verification_lost:
        _verification_lost.append(reaction)


def role_change_checks_run(*, membership: Membership, role: str) -> None:
    for check in _role_change_checks:
        check(membership=membership, role=role)


def verification_lost_run(*, actor: Actor, company: Company) -> None:
    for reaction in _verification_lost:
        reaction(actor=actor, company=company)
