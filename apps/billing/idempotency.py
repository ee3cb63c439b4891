"""The Idempotency-Key header for API requests whose effect is not itself a ledger posting
(starting a purchase creates a Stripe PaymentIntent). The first answer is stored and replayed.

A key is claimed by inserting its row (unique per company, endpoint and key) before the work
starts, so two concurrent requests with one key cannot both run: the second gets a 409 while the
first is running, and the first answer afterwards. The same key with other parameters is a 409.
Answers of 5xx (and crashes) release the key, so a retry can run; any other answer is final.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.models import IdempotentRequest
from apps.companies.models import Company
from apps.core.api import exception_handler
from apps.core.exceptions import ApplicationError, Conflict

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A claim with no answer after this long belongs to a request that died: it may be taken over.
STALE_CLAIM = timedelta(minutes=5)
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
        "running is a 409 `idempotency_key_in_use`. Keys are kept for 30 days."
    ),
)


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
            row.claimed_at = now
            return row, True
    return row, False


def idempotent_response(*, request: Request, company: Company, endpoint: str, run: Callable[[], Response]) -> Response:
    """Run `run` once per Idempotency-Key (when the header is sent) and replay its answer."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return run()
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
        replay = Response(row.response_body, status=row.response_status)
        replay["Idempotent-Replayed"] = "true"
        return replay

    try:
        response = run()
    except (ApplicationError, APIException) as error:
        handled = exception_handler(error, {})
        if handled is None or handled.status_code >= 500:
            _release(row)
            raise
        response = handled
    except BaseException:
        _release(row)
        raise
    if response.status_code >= 500:
        _release(row)
        return response
    body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
    IdempotentRequest.objects.filter(pk=row.pk).update(
        response_status=response.status_code, response_body=body, completed_at=timezone.now()
    )
    return response


def _release(row: IdempotentRequest) -> None:
    IdempotentRequest.objects.filter(pk=row.pk, response_status__isnull=True).delete()


def idempotent_requests_purge(*, now: datetime) -> int:
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=now - KEEP_FOR).delete()
    return deleted
