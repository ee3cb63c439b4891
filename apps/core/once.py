"""A page's form acts once per one-time token, for every layer (issue 13, item 3).

A form carries a one-time token (`{% form_once %}`, a hidden `once` field). The first POST that
succeeds claims it in PostgreSQL, in the transaction of the action itself, under a unique
constraint; the same form sent again (a reload, the back button, a double click) acts no more:
it is redirected where the first went, with ALREADY_DONE. A POST that fails (a form error, a
confirmation step) leaves the token free to send again.

Where the claim is kept is a store: an OnceToken row here (scoped by company, or by user on a
company-less page), or billing's IdempotentRequest (apps.billing.pages), through the same code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from apps.core.exceptions import ApplicationError
from apps.core.models import OnceToken

ONCE_FIELD = "once"
MAX_TOKEN_LENGTH = 64
ALREADY_DONE = "This form was sent already and was done once: nothing was done again."
# A form reloaded or sent back later than this acts again; the daily purge forgets older tokens.
KEEP_FOR = timedelta(days=30)
PURGE_BATCH = 5000
PURGE_LIMIT = 200_000
_CLAIMED = "_once_token_claimed"


class OnceStore(Protocol):
    """Where a token's claim is kept. `claim` raises IntegrityError if the token was claimed."""

    def claim(self, *, endpoint: str, key: str) -> Any: ...

    def complete(self, claim: Any, *, status: int, location: str) -> None: ...

    def location(self, *, endpoint: str, key: str) -> str | None: ...


@dataclass(frozen=True)
class TokenStore:
    """OnceToken rows, scoped by a company (a company page) or else by a user."""

    company_id: int | None = None
    user_id: int | None = None

    def __post_init__(self) -> None:
        if (self.company_id is None) == (self.user_id is None):
            raise ValueError("A one-time token is scoped by a company or by a user, not both or neither.")

    def _scope(self) -> dict[str, Any]:
        if self.company_id is not None:
            return {"company_id": self.company_id, "user_id": None}
        return {"company_id": None, "user_id": self.user_id}

    def claim(self, *, endpoint: str, key: str) -> OnceToken:
        return OnceToken.objects.create(endpoint=endpoint, key=key, **self._scope())

    def complete(self, claim: OnceToken, *, status: int, location: str) -> None:
        OnceToken.objects.filter(pk=claim.pk).update(location=location)

    def location(self, *, endpoint: str, key: str) -> str | None:
        return (
            OnceToken.objects.filter(endpoint=endpoint, key=key, **self._scope())
            .values_list("location", flat=True)
            .first()
        )


def once_token() -> str:
    return uuid.uuid4().hex


def _endpoint(request: HttpRequest) -> str:
    return f"page:{request.path}"[:100]


def act_once(request: HttpRequest, *, store: OnceStore, act: Callable[[], HttpResponse]) -> HttpResponse:
    """Run `act` once per `once` token. `act` answers a redirect when it did what was asked;
    any other answer (an error, a confirmation step) is not kept and its writes are undone.
    A POST without a token (a client that is not one of our pages) just acts."""
    token = str(request.POST.get(ONCE_FIELD, "")).strip()
    if not token:
        return act()
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise ApplicationError("This form is damaged: reload the page and try again.")
    if getattr(request, _CLAIMED, False):
        return act()  # this request's token is claimed already, by an enclosing act_once
    endpoint = _endpoint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                # A second sending of the form waits here for the first to commit, then finds its row.
                claim = store.claim(endpoint=endpoint, key=token)
        except IntegrityError:
            location = store.location(endpoint=endpoint, key=token)
            messages.info(request, ALREADY_DONE)
            return HttpResponseRedirect(location or request.path)
        setattr(request, _CLAIMED, True)
        response = act()
        if 300 <= response.status_code < 400:
            store.complete(claim, status=response.status_code, location=response["Location"])
        else:
            transaction.set_rollback(True)
    return response


def user_store(request: HttpRequest) -> TokenStore:
    """The store of a company-less page (creating a company, the user's own account)."""
    return TokenStore(user_id=request.user.pk)


class OncePostMixin:
    """For a page whose every POST is a form with `{% form_once %}`: the POST acts once per token
    (act_once). The tokens are the company's on a company page (one with a `company`, resolved
    by the page mixin: it is the POST handler that is wrapped, which runs after that mixin's
    checks, in any order of the bases), else the signed-in user's. `once_store` may say otherwise."""

    def once_store(self) -> OnceStore:
        company = getattr(self, "company", None)
        if company is not None:
            return TokenStore(company_id=company.pk)
        return user_store(self.request)  # type: ignore[attr-defined]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if request.method == "POST":
            handler = self.post  # type: ignore[attr-defined]

            def post_once(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                return act_once(request, store=self.once_store(), act=lambda: handler(request, *args, **kwargs))

            setattr(self, "post", post_once)  # noqa: B010  # this view instance serves this request only
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def once_tokens_purge(*, before: datetime, batch: int = PURGE_BATCH, limit: int = PURGE_LIMIT) -> int:
    """Forget the tokens claimed before `before`, in batches, each its own statement (no long
    locks, no huge transaction; a killed run keeps what it deleted)."""
    old = OnceToken.objects.filter(created_at__lt=before)
    deleted = 0
    while deleted < limit:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            break
        count, _ = OnceToken.objects.filter(pk__in=ids).delete()
        deleted += count
    return deleted


__all__ = [
    "ALREADY_DONE",
    "KEEP_FOR",
    "ONCE_FIELD",
    "OncePostMixin",
    "OnceStore",
    "TokenStore",
    "act_once",
    "once_token",
    "once_tokens_purge",
    "user_store",
]
