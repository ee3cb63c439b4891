"""The Stripe webhook inbox. Each event is verified, stored once under its unique id, then handled.

received → processed, or → failed with the error kept. A redelivery of an event already stored
changes nothing (the unique event id refuses the second insert), except that a failed event is
handled again, which is safe: handling is idempotent (purchase_apply_intent locks the purchase
and the ledger key is unique). Late and out-of-order events are harmless for the same reason:
a purchase that was paid stays paid whatever arrives after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.billing.models import StripeEvent
from apps.billing.purchases import clients
from apps.billing.purchases.services import purchase_apply_intent

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BATCH = 100


def _payment_intent(payload: dict[str, Any], *, default_error: str = "") -> None:
    data = (payload.get("data") or {}).get("object") or {}
    if data.get("object") != "payment_intent" or not data.get("id"):
        raise ValueError("The event does not carry a PaymentIntent.")
    intent = clients.payment_intent_from(data)
    if default_error and not intent.error_message and intent.status == "requires_payment_method":
        intent = replace(intent, error_message=default_error)
    purchase_apply_intent(intent=intent)


HANDLERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "payment_intent.succeeded": _payment_intent,
    "payment_intent.payment_failed": lambda payload: _payment_intent(payload, default_error="The payment failed."),
    "payment_intent.canceled": _payment_intent,
}


def stripe_event_receive(*, payload: bytes, signature: str) -> tuple[StripeEvent, bool]:
    """Verify and store an event. Returns (event, True) when it is to be handled now, (event,
    False) for a duplicate. Raises clients.InvalidWebhook (nothing stored) on a bad signature."""
    verified = clients.webhook_event(payload, signature)
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(event_id=verified.id, type=verified.type, payload=verified.payload)
        return event, True
    except IntegrityError:
        event = StripeEvent.objects.get(event_id=verified.id)
    # Stripe retries an event we answered with an error: claim a failed one for another try
    # (a conditional update, so two concurrent redeliveries cannot both take it).
    claimed = StripeEvent.objects.filter(pk=event.pk, status=StripeEvent.Status.FAILED).update(
        status=StripeEvent.Status.RECEIVED
    )
    return event, bool(claimed)


def stripe_event_process(*, event: StripeEvent) -> StripeEvent:
    """Handle a stored event; record processed, or failed with the error (and re-raise)."""
    handler = HANDLERS.get(event.type)
    try:
        if handler is not None:
            handler(event.payload)
    except Exception as error:
        logger.exception("Stripe event %s (%s) failed", event.event_id, event.type)
        StripeEvent.objects.filter(pk=event.pk).update(
            status=StripeEvent.Status.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            attempts=F("attempts") + 1,
        )
        raise
    StripeEvent.objects.filter(pk=event.pk).update(
        status=StripeEvent.Status.PROCESSED, error="", processed_at=timezone.now(), attempts=F("attempts") + 1
    )
    event.refresh_from_db()
    return event


def stripe_events_retry(*, now: datetime) -> dict[str, int]:
    """Periodic: handle again events that failed (a bug fixed since, a purchase row that was
    locked), a few times, and events left "received" by a process that died mid-handling."""
    stuck = now - timedelta(minutes=10)
    ids = list(
        StripeEvent.objects.filter(attempts__lt=MAX_ATTEMPTS)
        .filter(status__in=[StripeEvent.Status.FAILED, StripeEvent.Status.RECEIVED], received_at__lt=stuck)
        .order_by("received_at")
        .values_list("pk", "status")[:RETRY_BATCH]
    )
    counts = {"retried": 0, "failed": 0}
    for pk, status in ids:
        # The task runs under a job lock; the conditional update still skips an event a webhook
        # redelivery handled in the meantime.
        if not StripeEvent.objects.filter(pk=pk, status=status).update(status=StripeEvent.Status.RECEIVED):
            continue
        event = StripeEvent.objects.get(pk=pk)
        counts["retried"] += 1
        try:
            stripe_event_process(event=event)
        except Exception:
            counts["failed"] += 1
    return counts
