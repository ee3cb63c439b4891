"""What billing may do to the items it charges for, without knowing them.

A charge names its item by a label and a key (`Charge.item` = "<label>:<key>", e.g.
"sip_profiles.sipprofile:<public id>"). Each product registers the handler for its label in its
AppConfig.ready(); billing finds it here when an unpaid charge must suspend its item, or a paid
one resume it. An explicit, typed call into the product's own services, which write the row
and its audit event: billing never writes a product's rows, and imports none of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from apps.core.actor import Actor

if TYPE_CHECKING:
    from apps.billing.models import Charge


class ChargeItem(Protocol):
    """A kind of billable item, as its product handles it. Every method runs inside the
    charge's transaction, with the charge row locked."""

    def lock(self, key: str) -> Any | None:
        """The item, locked for update (None when it no longer exists)."""

    def suspend_unpaid(self, *, actor: Actor, item: Any, charge: Charge, now: datetime) -> None:
        """Suspend the item: its grace period ended with the charge unpaid."""

    def resumable(self, item: Any) -> bool:
        """Whether paying the charge may still bring the item back."""

    def resume_paid(self, *, actor: Actor, item: Any, charge: Charge) -> None:
        """The charge that suspended the item was paid: resume it (if nothing else is owed)."""


_handlers: dict[str, ChargeItem] = {}


def charge_item_register(label: str, handler: ChargeItem) -> None:
    """Called once per label from a product's AppConfig.ready()."""
    registered = _handlers.get(label)
    if registered is not None and type(registered) is not type(handler):
        raise RuntimeError(f"Charge item {label!r} already has a handler: {registered!r}")
    _handlers[label] = handler


def charge_item_label(label: str, key: object) -> str:
    """The `Charge.item` value of an item."""
    return f"{label}:{key}"


def charge_item_for(charge: Charge) -> tuple[ChargeItem, Any] | None:
    """The handler of a charge's item and the item, locked; None for an item that is gone or
    of a label nobody registered (a charge for something billing only records)."""
    label, _, key = charge.item.partition(":")
    handler = _handlers.get(label)
    if handler is None:
        return None
    item = handler.lock(key)
    return None if item is None else (handler, item)
