"""How a portal page posts an action: once, after a confirmed price, then a redirect.

- `act_once`: apps.core.once.act_once (a form's one-time token, `{% form_once %}`, acts once),
  the claim kept as an IdempotentRequest row of the company, as the API's Idempotency-Key is.
- `priced_post`: an action that charges first answers a confirmation step naming the quote
  (apps.billing.quotes); the confirmation posts the same fields with the quote's fingerprint,
  and is refused, with the new price shown, if the price changed in between.
- `redirect_done` and `secret_pop` (apps.core.prg, for every layer): Post/Redirect/Get, with a
  secret shown once carried to the page redirected to in the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.billing.models import IdempotentRequest
from apps.billing.quotes import Quote, quote_check
from apps.companies.models import Company
from apps.core.exceptions import ApplicationError
from apps.core.once import ALREADY_DONE, ONCE_FIELD, OnceStore, once_token
from apps.core.once import OncePostMixin as CoreOncePostMixin
from apps.core.once import act_once as core_act_once
from apps.core.prg import redirect_done, secret_pop

CONFIRM_FIELD = "confirm"
BACK_FIELD = "back_to_form"


@dataclass(frozen=True)
class IdempotentRequestStore:
    """A billing page's tokens are kept with the API's Idempotency-Keys (one table, one purge,
    one place a purchase's claim is found), through apps.core.once's code path."""

    company: Company

    def claim(self, *, endpoint: str, key: str) -> IdempotentRequest:
        return IdempotentRequest.objects.create(
            company=self.company, endpoint=endpoint, key=key, fingerprint="page", claimed_at=timezone.now()
        )

    def complete(self, claim: IdempotentRequest, *, status: int, location: str) -> None:
        IdempotentRequest.objects.filter(pk=claim.pk).update(
            response_status=status, response_body={"location": location}, completed_at=timezone.now()
        )

    def location(self, *, endpoint: str, key: str) -> str | None:
        row = IdempotentRequest.objects.filter(company=self.company, endpoint=endpoint, key=key).first()
        found = (row.response_body or {}).get("location") if row is not None else None
        return str(found) if found else None


def act_once(request: HttpRequest, *, company: Company, act: Callable[[], HttpResponse]) -> HttpResponse:
    """apps.core.once.act_once, the claim kept as the company's IdempotentRequest."""
    return core_act_once(request, store=IdempotentRequestStore(company), act=act)


class OncePostMixin(CoreOncePostMixin):
    """apps.core.once.OncePostMixin for a billing or product page of a company: its tokens are
    kept as the company's IdempotentRequest rows."""

    def once_store(self) -> OnceStore:
        return IdempotentRequestStore(self.company)  # type: ignore[attr-defined]


def _hidden_fields(request: HttpRequest) -> list[tuple[str, str]]:
    fields = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in {"csrfmiddlewaretoken", CONFIRM_FIELD, BACK_FIELD}
        for value in values
    ]
    if not any(name == ONCE_FIELD for name, _ in fields):
        fields.append((ONCE_FIELD, once_token()))
    return fields


def confirm_context(
    request: HttpRequest, *, quote: Quote, title: str, button: str, cancel_url: str, changed: str | None = None
) -> dict[str, Any]:
    """What the confirmation step (billing/_confirm.html) shows and posts again."""
    return {
        "quote": quote,
        "confirm_title": title,
        "confirm_button": button,
        "confirm_action": request.path,
        "confirm_cancel_url": cancel_url,
        "confirm_hidden": _hidden_fields(request),
        "confirm_changed": changed,
    }


def priced_post(
    request: HttpRequest,
    *,
    company: Company,
    quote: Callable[[], Quote],
    act: Callable[[], HttpResponse],
    confirm: Callable[[dict[str, Any]], HttpResponse],
    back: Callable[[], HttpResponse],
    title: str,
    button: str,
    cancel_url: str,
    confirm_free: bool = True,
) -> HttpResponse:
    """A POST that charges: once (act_once), and only after the quote was shown and confirmed.
    `quote()` raises ApplicationError for input the action refuses (the caller shows it on its
    form); `confirm(context)` renders the confirmation step with `confirm_context`'s values;
    `back()` the form again with what was sent (the step's "Change" button). `confirm_free`:
    whether an action that costs nothing is confirmed too (cancelling bundles is; saving a
    profile without adding channels is not)."""

    def run() -> HttpResponse:
        if request.POST.get(BACK_FIELD):
            return back()
        current = quote()
        if current.amount == 0 and not confirm_free:
            return act()
        sent = request.POST.get(CONFIRM_FIELD)
        if not sent:
            context = confirm_context(request, quote=current, title=title, button=button, cancel_url=cancel_url)
            return confirm(context)
        try:
            quote_check(current, sent)
        except ApplicationError as error:
            context = confirm_context(
                request, quote=current, title=title, button=button, cancel_url=cancel_url, changed=error.message
            )
            response = confirm(context)
            response.status_code = 409
            return response
        return act()

    return act_once(request, company=company, act=run)


def confirm_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The confirmation step as a page of its own (billing/confirm.html)."""
    response = render(request, "billing/confirm.html", context)
    response["Cache-Control"] = "no-store"
    return response


__all__ = [
    "ALREADY_DONE",
    "BACK_FIELD",
    "CONFIRM_FIELD",
    "ONCE_FIELD",
    "IdempotentRequestStore",
    "OncePostMixin",
    "act_once",
    "confirm_context",
    "confirm_page",
    "once_token",
    "priced_post",
    "redirect_done",
    "secret_pop",
]
