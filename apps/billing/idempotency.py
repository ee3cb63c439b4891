"""The Idempotency-Key header for API requests whose effect is not itself a ledger posting
(starting a purchase creates a Stripe PaymentIntent). The first answer is stored and replayed.

A key is claimed by inserting its row (unique per company, endpoint and key) in PostgreSQL
before the work starts, so two concurrent requests with one key cannot both run: the second gets
a 409 while the first is running, and the first answer afterwards. The same key with other
parameters is a 409.

One charge per key, whatever fails. A request that starts a purchase binds it to its claim in
the transaction that creates the purchase, before Stripe is called, and only while it still
holds the claim (a conditional UPDATE on `claimed_at`: a request whose claim was taken over
creates nothing). A claim bound to a purchase is never released and never runs its work again:
a retry, once the first request ended or died, answers with that purchase as Stripe now has it.
Otherwise an answer of 5xx (or a crash) releases the key so a retry can run, since nothing was
started; any other answer is final.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.models import CreditPurchase, IdempotentRequest
from apps.companies.models import Company
from apps.core.api import exception_handler
from apps.core.exceptions import ApplicationError, Conflict

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A claim with no answer after this long belongs to a request that died: it may be taken over.
# Every request is bounded well below it (Stripe and database timeouts); correctness does not
# depend on it, since a taken-over claim's old holder can no longer bind anything to it.
STALE_CLAIM = timedelta(minutes=2)
KEEP_FOR = timedelta(days=30)

HEADER_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string of up to 255 visible characters (a UUID is a good choice). Retrying with the "
        "same key returns the first response (with the header `Idempotent-Replayed: true`); the same key "
        "with other parameters is a 409 `idempotency_key_reused`; a retry while the first request is still "
        "running is a 409 `idempotency_key_in_use`. A purchase started under a key is never started "
        "again: a retry after a lost answer or a server error returns that purchase as it stands now. "
        "Keys are kept for 30 days."
    ),
)


class ClaimLost(Conflict):
    """This request's claim was taken over (it was thought dead): it must start nothing."""

    default_code = "idempotency_key_in_use"


class Claim:
    """A request's hold on its Idempotency-Key, handed to the work it guards."""

    def __init__(self, row: IdempotentRequest) -> None:
        self.row = row

    def bind_purchase(self, purchase: CreditPurchase) -> None:
        """Bind the purchase this request started to its key. Call in the transaction that
        creates the purchase, before any network call; raises ClaimLost (rolling the purchase
        back) when another request holds the key now."""
        bound = IdempotentRequest.objects.filter(
            pk=self.row.pk, claimed_at=self.row.claimed_at, purchase__isnull=True, response_status__isnull=True
        ).update(purchase=purchase)
        if not bound:
            raise ClaimLost(f"A request with this {HEADER} is still being processed. Retry in a moment.", field=HEADER)
        self.row.purchase = purchase


def fingerprint(request: Request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a QueryDict (form or multipart body)
        data = dict(data.lists())
    canonical = json.dumps(
        {"method": request.method, "data": data}, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(*, company: Company, endpoint: str, key: str, digest: str) -> tuple[IdempotentRequest, bool]:
    now = timezone.now()
    try:
        with transaction.atomic():
            row = IdempotentRequest.objects.create(
                company=company, endpoint=endpoint, key=key, fingerprint=digest, claimed_at=now
            )
        return row, True
    except IntegrityError:
        row = IdempotentRequest.objects.get(company=company, endpoint=endpoint, key=key)
    if row.fingerprint == digest and row.response_status is None and row.claimed_at < now - STALE_CLAIM:
        taken = IdempotentRequest.objects.filter(
            pk=row.pk, response_status__isnull=True, claimed_at=row.claimed_at
        ).update(claimed_at=now)
        if taken:
            # Whatever the old holder bound before the takeover is seen here; after it, it can
            # bind nothing (its claimed_at no longer matches).
            row.refresh_from_db(fields=["purchase", "claimed_at"])
            return row, True
    return row, False


def idempotent_response(
    *,
    request: Request,
    company: Company,
    endpoint: str,
    run: Callable[[Claim | None], Response],
    resume: Callable[[IdempotentRequest], Response] | None = None,
    atomic: bool = False,
) -> Response:
    """Run `run` once per Idempotency-Key (when the header is sent) and replay its answer.
    `run` gets the claim to bind what it starts (None without the header). `resume` answers for
    a claim whose request started a purchase but never answered (it died, or failed after).
    `atomic`: work that only writes the database commits in one transaction with its answer, so
    a request that dies after the work has also kept its answer (and a retry replays it)."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return run(None)
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApplicationError(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters.", field=HEADER
        )
    digest = fingerprint(request)
    row, claimed = _claim(company=company, endpoint=endpoint, key=key, digest=digest)
    if not claimed:
        if row.fingerprint != digest:
            raise Conflict(
                f"This {HEADER} was already used with other parameters.",
                field=HEADER,
                code="idempotency_key_reused",
            )
        if row.response_status is None:
            raise Conflict(
                f"A request with this {HEADER} is still being processed. Retry in a moment.",
                field=HEADER,
                code="idempotency_key_in_use",
            )
        return _replayed(Response(row.response_body, status=row.response_status))

    resuming = row.purchase_id is not None
    stored = False
    try:
        if resuming:
            if resume is None:
                raise ClaimLost(f"A request with this {HEADER} started work that cannot be resumed here.")
            response = resume(row)
        elif atomic:
            with transaction.atomic():
                # Held to commit: a takeover waits for this work and then finds its answer.
                held = IdempotentRequest.objects.select_for_update().filter(
                    pk=row.pk, claimed_at=row.claimed_at, response_status__isnull=True
                )
                if not held.exists():
                    raise ClaimLost(f"A request with this {HEADER} is still being processed.", field=HEADER)
                response = run(Claim(row))
                if response.status_code < 500:
                    _store(row, response)
                    stored = True
        else:
            response = run(Claim(row))
    except ClaimLost:
        raise  # the key belongs to another request now: answer 409, store nothing
    except (ApplicationError, APIException) as error:
        handled = exception_handler(error, {})
        if handled is None or handled.status_code >= 500:
            _unfinished(row)
            raise
        response = handled
    except BaseException:
        _unfinished(row)
        raise
    if response.status_code >= 500:
        _unfinished(row)
        return response
    if not stored:
        _store(row, response)
    return _replayed(response) if resuming else response


def _store(row: IdempotentRequest, response: Response) -> None:
    body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
    stored = IdempotentRequest.objects.filter(pk=row.pk, claimed_at=row.claimed_at).update(
        response_status=response.status_code, response_body=body, completed_at=timezone.now()
    )
    if not stored:
        # Taken over while this request ran: only possible for work that ran past STALE_CLAIM.
        logger.warning("Idempotency-Key %s was taken over before its answer was stored", row.key)


def _replayed(response: Response) -> Response:
    response["Idempotent-Replayed"] = "true"
    return response


def _unfinished(row: IdempotentRequest) -> None:
    """The request ends without an answer to keep. If it started nothing that can charge, the key
    is released so a retry runs afresh; otherwise it is left for a retry to resume at once."""
    mine = IdempotentRequest.objects.filter(pk=row.pk, response_status__isnull=True, claimed_at=row.claimed_at)
    try:
        # A purchase that failed before any intent existed can never be charged.
        uncharged = Q(purchase__isnull=True) | Q(
            purchase__status=CreditPurchase.Status.FAILED, purchase__stripe_payment_intent__isnull=True
        )
        deleted, _ = mine.filter(uncharged).delete()
        if not deleted:
            mine.update(claimed_at=timezone.now() - STALE_CLAIM - timedelta(seconds=1))
    except DatabaseError:
        # The database is away: the claim stays as it is and goes stale; the retry that takes
        # it over then resumes a bound purchase, or runs afresh if there is none.
        logger.warning("Could not settle the claim of Idempotency-Key %s", row.key)
