"""Stripe: the only module that talks to it (STYLE rule 9), and the only thing tests may fake.

Everything here returns small dataclasses with amounts as Decimal in major units; integer
minor units (cents) exist only inside this module. No call here may run inside a database
transaction: a slow or failed network call must never hold row locks.

Stripe honours idempotency keys, and the keys passed here make retried creates safe against
the real API. The local imitation used in development and tests (localstripe) ignores them,
so callers get exactly-once from their own recorded state, never from these keys alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

import requests
import stripe
import urllib3
from django.conf import settings

from apps.billing.money import CENTS
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

# Every currency a company can hold (USD, EUR, GBP) has two decimal places at Stripe.
MINOR_UNITS = Decimal(100)


class PaymentProviderError(ApplicationError):
    """Stripe refused the request for a reason that is not the card's, or its answer was lost
    (a read timeout, a dropped connection, a 5xx): for a request that charges, the outcome is
    then unknown and only a later look at Stripe can tell."""

    status_code = 502
    default_code = "payment_provider_error"


class PaymentProviderUnreachable(PaymentProviderError):
    """The request never left: the connection to Stripe was refused or could not be opened in
    time. Nothing happened at Stripe, so nothing was charged: a known failure."""

    status_code = 503
    default_code = "payment_provider_unavailable"


class CardDeclined(ApplicationError):
    """The card (or PayPal) was refused. `payment_intent` is the intent it was tried on, if known."""

    status_code = 402
    default_code = "card_declined"

    def __init__(self, message: str, *, payment_intent: str | None = None) -> None:
        super().__init__(message, code="card_declined")
        self.payment_intent = payment_intent


class NotFoundAtStripe(PaymentProviderError):
    default_code = "not_found_at_stripe"


class InvalidWebhook(Exception):
    """The body is not a Stripe event, or its signature does not match (wrong secret, altered
    body, stale timestamp)."""


@dataclass(frozen=True)
class PaymentIntentInfo:
    id: str
    status: str
    amount: Decimal
    currency: str  # upper case, as companies store it
    amount_received: Decimal | None = None
    client_secret: str = ""
    customer: str | None = None
    payment_method: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    error_message: str = ""
    next_action: str = ""


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    status: str
    client_secret: str
    customer: str | None
    payment_method: str | None


@dataclass(frozen=True)
class CardInfo:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer: str | None


@dataclass(frozen=True)
class RefundInfo:
    id: str
    status: str
    amount: Decimal
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    payload: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        data = self.payload.get("data") or {}
        return data.get("object") or {}


# --- Money --------------------------------------------------------------------------


def to_minor(amount: Decimal) -> int:
    minor = amount * MINOR_UNITS
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more than two decimal places")
    return int(minor)


def from_minor(value: int | None) -> Decimal:
    return (Decimal(int(value or 0)) / MINOR_UNITS).quantize(CENTS)


# --- The client -----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _client_for(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        # No automatic retries: a retry hides what happened to the first try (a read timeout
        # followed by a refused retry would look like "never sent"), and it multiplies the time a
        # request may hold a web worker. Callers settle unknown outcomes from Stripe's state.
        max_network_retries=0,
        # Connect and read, each bounded: a frozen Stripe holds a request for seconds, not minutes.
        http_client=stripe.RequestsClient(timeout=(settings.STRIPE_CONNECT_TIMEOUT, settings.STRIPE_READ_TIMEOUT)),
    )


def _client() -> stripe.StripeClient:
    # Read at each call, so that settings changed by tests (or a reload) take effect.
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE.rstrip("/"))


def _call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call, turning its errors into ours."""
    try:
        return function(*args, **kwargs)
    except stripe.CardError as error:
        payment_intent = None
        body = error.json_body if isinstance(error.json_body, dict) else {}
        intent = (body.get("error") or {}).get("payment_intent")
        if isinstance(intent, dict):
            payment_intent = intent.get("id")
        raise CardDeclined(error.user_message or "The card was declined.", payment_intent=payment_intent) from error
    except stripe.InvalidRequestError as error:
        logger.warning("Stripe refused %s: %s", what, error.user_message or error)
        if error.http_status == 404:
            raise NotFoundAtStripe(f"Stripe does not know this object ({what}).") from error
        raise PaymentProviderError(f"The payment provider refused the request: {error.user_message}") from error
    except stripe.APIConnectionError as error:
        if _never_sent(error):
            logger.warning("Stripe unreachable on %s: %s", what, error.__cause__)
            raise PaymentProviderUnreachable(
                "The payment provider could not be reached; nothing was charged. Please try again."
            ) from error
        logger.warning("Stripe connection lost on %s: %s", what, error.__cause__ or error)
        raise PaymentProviderError("The payment provider did not answer in time. Please try again.") from error
    except stripe.StripeError as error:
        logger.warning("Stripe error on %s: %s", what, error.user_message or error)
        raise PaymentProviderError("The payment provider could not be reached. Please try again.") from error


def _never_sent(error: stripe.APIConnectionError) -> bool:
    """True when the connection itself failed (refused, unresolvable, connect timeout): the
    request was never sent. A read timeout or a dropped connection may hide a request that was
    carried out."""
    cause = error.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])  # urllib3's MaxRetryError wraps it
        # NewConnectionError (refused, no route, name not resolved) is a ConnectTimeoutError.
        return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
    return False


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    return obj.to_dict() if obj is not None else {}


def _id_of(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object (localstripe always expands)."""
    if value is None or isinstance(value, str):
        return value
    return _as_dict(value).get("id")


def payment_intent_from(data: dict[str, Any]) -> PaymentIntentInfo:
    """A PaymentIntent's fields we use, from the API's object (also an event's data.object)."""
    error = data.get("last_payment_error") or {}
    received = data.get("amount_received")
    next_action = data.get("next_action") or {}
    return PaymentIntentInfo(
        id=data["id"],
        status=data.get("status") or "",
        amount=from_minor(data.get("amount")),
        amount_received=from_minor(received) if received is not None else None,
        currency=str(data.get("currency") or "").upper(),
        client_secret=data.get("client_secret") or "",
        customer=_id_of(data.get("customer")),
        payment_method=_id_of(data.get("payment_method")),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        error_message=str(error.get("message") or ""),
        next_action=str(next_action.get("type") or ""),
    )


def _setup_intent(obj: Any) -> SetupIntentInfo:
    data = _as_dict(obj)
    return SetupIntentInfo(
        id=data["id"],
        status=data.get("status") or "",
        client_secret=data.get("client_secret") or "",
        customer=_id_of(data.get("customer")),
        payment_method=_id_of(data.get("payment_method")),
    )


def _card(obj: Any) -> CardInfo:
    data = _as_dict(obj)
    card = data.get("card") or {}
    return CardInfo(
        id=data["id"],
        brand=str(card.get("brand") or "card"),
        last4=str(card.get("last4") or ""),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
        customer=_id_of(data.get("customer")),
    )


def _refund(obj: Any) -> RefundInfo:
    data = _as_dict(obj)
    return RefundInfo(
        id=data["id"],
        status=data.get("status") or "",
        amount=from_minor(data.get("amount")),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


# --- Customers and payment methods --------------------------------------------------------


def customer_create(*, name: str, company_id: str, idempotency_key: str) -> str:
    customer = _call(
        "customer create",
        _client().v1.customers.create,
        params={"name": name[:200], "metadata": {"company": company_id}},
        options={"idempotency_key": idempotency_key},
    )
    return str(customer.id)


def customer_delete(customer_id: str) -> None:
    _call("customer delete", _client().v1.customers.delete, customer_id)


def payment_method_retrieve(payment_method_id: str) -> CardInfo:
    return _card(_call("payment method retrieve", _client().v1.payment_methods.retrieve, payment_method_id))


def payment_method_attach(payment_method_id: str, *, customer: str) -> CardInfo:
    return _card(
        _call(
            "payment method attach",
            _client().v1.payment_methods.attach,
            payment_method_id,
            params={"customer": customer},
        )
    )


def payment_method_detach(payment_method_id: str) -> None:
    """Detach a card from its customer; one Stripe no longer knows counts as detached."""
    try:
        _call("payment method detach", _client().v1.payment_methods.detach, payment_method_id)
    except NotFoundAtStripe:
        logger.info("Payment method %s was already gone at Stripe", payment_method_id)


def payment_methods_list(*, customer: str) -> list[CardInfo]:
    result = _call(
        "payment method list", _client().v1.payment_methods.list, params={"customer": customer, "type": "card"}
    )
    return [_card(item) for item in result.data]


# --- Setup and payment intents ---------------------------------------------------------------


def setup_intent_create(*, customer: str | None, off_session: bool, idempotency_key: str) -> SetupIntentInfo:
    """Collect a card in the browser (Stripe.js confirmCardSetup) without charging it. With
    `off_session` it is set up, and attached to `customer`, for charges made later without the
    person present (auto-recharge)."""
    params: dict[str, Any] = {
        "payment_method_types": ["card"],
        "usage": "off_session" if off_session else "on_session",
    }
    if customer:
        params["customer"] = customer
    return _setup_intent(
        _call(
            "setup intent create",
            _client().v1.setup_intents.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
    )


def setup_intent_retrieve(setup_intent_id: str) -> SetupIntentInfo:
    return _setup_intent(_call("setup intent retrieve", _client().v1.setup_intents.retrieve, setup_intent_id))


def payment_intent_create(
    *,
    amount: Decimal,
    currency: str,
    method: str,
    customer: str | None,
    metadata: dict[str, str],
    idempotency_key: str,
    payment_method: str | None = None,
    confirm: bool = False,
    off_session: bool = False,
) -> PaymentIntentInfo:
    """A PaymentIntent for `amount` paid by `method` ("card" or "paypal"). With `confirm` and
    `off_session` it charges a saved card now, without the person (auto-recharge); a refusal
    raises CardDeclined carrying the intent's id when Stripe gives it."""
    params: dict[str, Any] = {
        "amount": to_minor(amount),
        "currency": currency.lower(),
        # Explicit types: the local imitation does not know automatic_payment_methods.
        "payment_method_types": [method],
        "metadata": metadata,
    }
    if customer:
        params["customer"] = customer
    if payment_method:
        params["payment_method"] = payment_method
    if confirm:
        params["confirm"] = True
    if off_session:
        params["off_session"] = True
    intent = _call(
        "payment intent create",
        _client().v1.payment_intents.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )
    return payment_intent_from(_as_dict(intent))


def payment_intent_retrieve(payment_intent_id: str) -> PaymentIntentInfo:
    intent = _call("payment intent retrieve", _client().v1.payment_intents.retrieve, payment_intent_id)
    return payment_intent_from(_as_dict(intent))


def payment_intent_confirm(payment_intent_id: str, *, payment_method: str) -> PaymentIntentInfo:
    """Confirm on the server with `payment_method`: set it first, then confirm (the local
    imitation cannot confirm with a payment_method parameter). A declined card is not an
    exception here: the returned intent carries the error message."""
    client = _client()
    _call(
        "payment intent update",
        client.v1.payment_intents.update,
        payment_intent_id,
        params={"payment_method": payment_method},
    )
    try:
        intent = _call("payment intent confirm", client.v1.payment_intents.confirm, payment_intent_id)
    except CardDeclined as declined:
        info = payment_intent_retrieve(payment_intent_id)
        if info.error_message:
            return info
        return replace(info, error_message=declined.message)
    return payment_intent_from(_as_dict(intent))


def payment_intent_confirm_off_session(payment_intent_id: str) -> PaymentIntentInfo:
    """Charge an intent created with its saved card, without the person (auto-recharge). The
    intent's id is stored before this call, so an answer lost here is settled by retrieving it.
    A declined card is not an exception: the returned intent carries the error message."""
    # The real API is told the person is absent (a merchant-initiated charge); the local
    # imitation takes no parameter on confirm.
    params = {} if settings.STRIPE_API_BASE else {"off_session": True}
    try:
        intent = _call("payment intent confirm", _client().v1.payment_intents.confirm, payment_intent_id, params=params)
    except CardDeclined as declined:
        info = payment_intent_retrieve(payment_intent_id)
        return info if info.error_message else replace(info, error_message=declined.message)
    return payment_intent_from(_as_dict(intent))


def payment_intent_cancel(payment_intent_id: str) -> PaymentIntentInfo:
    intent = _call("payment intent cancel", _client().v1.payment_intents.cancel, payment_intent_id)
    return payment_intent_from(_as_dict(intent))


# --- Refunds ----------------------------------------------------------------------------------


def refund_find(*, payment_intent: str, purchase_id: str) -> RefundInfo | None:
    """The refund made earlier for this purchase, if any (a retry must not refund twice)."""
    result = _call("refund list", _client().v1.refunds.list, params={"payment_intent": payment_intent, "limit": 100})
    for item in result.data:
        refund = _refund(item)
        if refund.metadata.get("purchase") == purchase_id and refund.status in ("succeeded", "pending"):
            return refund
    return None


def refund_create(*, payment_intent: str, purchase_id: str, idempotency_key: str) -> RefundInfo:
    """Refund the whole payment, once: an existing refund for the purchase is returned instead."""
    existing = refund_find(payment_intent=payment_intent, purchase_id=purchase_id)
    if existing is not None:
        return existing
    refund = _call(
        "refund create",
        _client().v1.refunds.create,
        params={"payment_intent": payment_intent, "metadata": {"purchase": purchase_id}},
        options={"idempotency_key": idempotency_key},
    )
    return _refund(refund)


# --- Webhooks ---------------------------------------------------------------------------------


def webhook_event(payload: bytes, signature: str) -> WebhookEvent:
    """Verify a webhook's signature and timestamp (offline) and read the event."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # An empty secret would make every signature computable by anyone.
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not set: webhooks are refused.")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise InvalidWebhook(str(error)) from error
    # Keep what Stripe sent, as it sent it; the SDK's object was only needed for the check.
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(event.id, str) or not isinstance(data.get("type"), str):
        raise InvalidWebhook("The event has no id or type.")
    return WebhookEvent(id=event.id, type=data["type"], payload=data)
