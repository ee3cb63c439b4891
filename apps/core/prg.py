"""Post/Redirect/Get for the portal's pages: every POST that succeeds answers a redirect, so a
reload shows the page again rather than sending the form again.

A secret shown once (a new SIP password, a new API key) travels to the page redirected to in
the server-side session and is taken out of it there (`secret_pop`): neither a reload, the
browser's history nor its cache (the page is sent no-store) can show it again.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

SHOWN_ONCE_SESSION_KEY = "shown_once"


def redirect_done(
    request: HttpRequest, to: str, *, message: str | None = None, secret: str | None = None
) -> HttpResponseRedirect:
    """The answer to a POST that succeeded: a redirect, with its message (and a secret shown
    once on the page `to`)."""
    if message:
        messages.success(request, message)
    if secret is not None:
        # Kept only until that page is shown (secret_pop), in the server-side session.
        request.session[SHOWN_ONCE_SESSION_KEY] = {"path": to, "value": secret}
    return HttpResponseRedirect(to)


def secret_pop(request: HttpRequest) -> str | None:
    """The secret a redirect brought to this page, taken out of the session: shown once."""
    kept = request.session.get(SHOWN_ONCE_SESSION_KEY)
    if not isinstance(kept, dict) or kept.get("path") != request.path:
        return None
    del request.session[SHOWN_ONCE_SESSION_KEY]
    return str(kept.get("value"))


def no_store(response: HttpResponse) -> HttpResponse:
    """The page shows a secret: no cache, proxy or browser history may keep it."""
    response["Cache-Control"] = "no-store"
    return response
