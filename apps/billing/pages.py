"""How a portal page posts an action: once, after a confirmed price, then a redirect.

- `act_once`: a form carries a one-time token (`{% form_once %}`, a hidden `once` field). The
  first POST that succeeds claims it in PostgreSQL (an IdempotentRequest row, as the API's
  Idempotency-Key does, in the transaction of the action itself); the same form sent again (a
  reload, the back button, a double click) acts no more: it is redirected where the first went.
  A POST that fails (a form error, a confirmation step) leaves the token free to send again.
- `priced_post`: an action that charges first answers a confirmation step naming the quote
  (apps.billing.quotes); the confirmation posts the same fields with the quote's fingerprint,
  and is refused, with the new price shown, if the price changed in between.
- `redirect_done` and `secret_pop` (apps.core.prg, for every layer): Post/Redirect/Get, with a
  secret shown once carried to the page redirected to in the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from apps.billing.models import IdempotentRequest
from apps.billing.quotes import Quote, quote_check
from apps.companies.models import Company
from apps.core.exceptions import ApplicationError
from apps.core.prg import redirect_done, secret_pop

ONCE_FIELD = "once"
CONFIRM_FIELD = "confirm"
BACK_FIELD = "back_to_form"
MAX_TOKEN_LENGTH = 64
ALREADY_DONE = "This form was sent already and was done once: nothing was done again."
_CLAIMED = "_once_token_claimed"


def once_token() -> str:
    return uuid.uuid4().hex


def _endpoint(request: HttpRequest) -> str:
    return f"page:{request.path}"[:100]


def act_once(request: HttpRequest, *, company: Company, act: Callable[[], HttpResponse]) -> HttpResponse:
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
                row = IdempotentRequest.objects.create(
                    company=company, endpoint=endpoint, key=token, fingerprint="page", claimed_at=timezone.now()
                )
        except IntegrityError:
            return _replay(request, company=company, endpoint=endpoint, token=token)
        setattr(request, _CLAIMED, True)
        response = act()
        if 300 <= response.status_code < 400:
            IdempotentRequest.objects.filter(pk=row.pk).update(
                response_status=response.status_code,
                response_body={"location": response["Location"]},
                completed_at=timezone.now(),
            )
        else:
            transaction.set_rollback(True)
    return response


class OncePostMixin:
    """For a company page whose every POST is a form with `{% form_once %}`: the POST acts once
    per token (act_once), on the company the page mixin resolved (in any order of the bases:
    it is the POST handler that is wrapped, which runs after the page mixin's checks)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if request.method == "POST":
            handler = self.post  # type: ignore[attr-defined]

            def post_once(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                company = self.company  # type: ignore[attr-defined]
                return act_once(request, company=company, act=lambda: handler(request, *args, **kwargs))

            setattr(self, "post", post_once)  # noqa: B010  # this view instance serves this request only
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def _replay(request: HttpRequest, *, company: Company, endpoint: str, token: str) -> HttpResponse:
    row = IdempotentRequest.objects.filter(company=company, endpoint=endpoint, key=token).first()
    location = (row.response_body or {}).get("location") if row is not None else None
    messages.info(request, ALREADY_DONE)
    return HttpResponseRedirect(location or request.path)


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
    "OncePostMixin",
    "act_once",
    "confirm_context",
    "confirm_page",
    "once_token",
    "priced_post",
    "redirect_done",
    "secret_pop",
]
