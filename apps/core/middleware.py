from __future__ import annotations

import select
import time
from collections.abc import Callable
from contextlib import suppress
from threading import local
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import DatabaseError, connection, connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.template.loader import render_to_string
from django_htmx.middleware import HtmxMiddleware
from psycopg.pq import ConnStatus

from apps.core import outages

ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or the address our own proxies saw.

    Only the last TRUSTED_PROXY_COUNT hops of X-Forwarded-For are ours; anything
    to their left was written by the client and cannot be trusted.
    """
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(addresses) >= hops:
            return addresses[-hops]
    return request.META.get("REMOTE_ADDR")


def api_key_request(request: HttpRequest) -> bool:
    """An API request that authenticates with an API key: `Authorization: Bearer …` under
    /api/. DRF's ApiKeyAuthentication answers such a request itself (accepted, or a 401),
    never falling back to the session, so nothing of the browser's is read for it."""
    return request.path.startswith("/api/") and request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")


class _SkipsApiKeyRequests:
    """Mixed into a middleware so it runs for every request except API-key ones
    (api_key_request): the session, CSRF cookie, lazy user, messages and htmx middleware do
    nothing for those but cost CPU on each of them (issue 15, the fixed cost). A
    session-authenticated API request (the portal's own pages calling the API) still goes
    through them all, and so does its CSRF check (DRF's SessionAuthentication); the security
    headers are set on every response by the middleware outside these. Subclasses of
    Django's own classes, so the admin's checks still find them."""

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if api_key_request(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionForBrowsers(_SkipsApiKeyRequests, SessionMiddleware):
    pass


class CsrfForBrowsers(_SkipsApiKeyRequests, CsrfViewMiddleware):
    def process_view(self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any) -> Any:
        if api_key_request(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationForBrowsers(_SkipsApiKeyRequests, AuthenticationMiddleware):
    pass


class MessagesForBrowsers(_SkipsApiKeyRequests, MessageMiddleware):
    pass


class HtmxForBrowsers(_SkipsApiKeyRequests, HtmxMiddleware):
    pass


class ClientAddressMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.client_ip = client_ip(request)  # type: ignore[attr-defined]
        return self.get_response(request)


def request_too_large_detail() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than this API accepts: at most {limit:,} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."


def _api_error(detail: str, code: str, status: int, errors: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code, "errors": errors or {}}, status=status)


class ApiInputMiddleware:
    """Malformed input to the API refused before any view runs, in the API's error body:

    - a body over DATA_UPLOAD_MAX_MEMORY_SIZE (by its Content-Length) is a 413 naming the
      limit (Django would answer its HTML 400 page and log it as suspicious); multipart
      uploads carry files, which Django bounds by field, so they are left to it (a field over
      the limit is still a 413, from the API's exception handler);
    - a NUL character in a query parameter's name or value is a 400 naming the parameter
      (PostgreSQL cannot compare text with one; every filter would otherwise need the check).

    Bodies themselves are checked by the API's parsers (apps.core.parsers)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _api_error("The Content-Length header is not a number.", "parse_error", 400)
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        if limit is not None and length > limit and not multipart:
            return _api_error(request_too_large_detail(), "request_too_large", 413)
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                field = name.replace("\x00", "") or "non_field_errors"
                message = "Remove the NUL character (%00): text cannot hold it."
                return _api_error(message, "invalid", 400, {field: [message]})
        return self.get_response(request)


HEALTH_PATHS = frozenset({"/health/", "/healthz"})


def _skips_database_check(path: str) -> bool:
    # The health view reports the database itself; static files never need it.
    return path in HEALTH_PATHS or path.startswith(settings.STATIC_URL)


# A connection used less than this long ago by this thread, whose socket holds nothing from the
# server, is used without CONN_HEALTH_CHECKS' `SELECT 1`.
HEALTH_CHECK_IDLE_SECONDS = 10.0
_last_checked = local()


def known_good_connection() -> bool:
    """Whether this thread's persistent connection may skip its `SELECT 1` for this request:
    it answered a request less than HEALTH_CHECK_IDLE_SECONDS ago and its socket is quiet.

    A server that closes a connection (a restart, pg_terminate_backend, idle_session_timeout,
    a failover that stops the old primary) says so on the socket before closing it: that is
    read here without a round trip (poll), and the connection is then checked and replaced
    as before. After a quiet pause longer than HEALTH_CHECK_IDLE_SECONDS (where a NAT, a
    firewall or a pooler may have dropped it silently) the `SELECT 1` runs, as it does for
    the health endpoint (which queries itself) and in Celery workers (Django's own check,
    CONN_HEALTH_CHECKS, on every task's first query)."""
    if connection.vendor != "postgresql":
        return False
    raw = connection.connection
    now = time.monotonic()
    last, _last_checked.at = getattr(_last_checked, "at", None), now
    if raw is None or last is None or now - last > HEALTH_CHECK_IDLE_SECONDS:
        return False
    try:
        if raw.closed or raw.info.status != ConnStatus.OK:
            return False
        poller = select.poll()
        poller.register(raw.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


class DatabaseUnavailableMiddleware:
    """Outermost middleware: while PostgreSQL cannot be reached, answer 503 with Retry-After
    (the API's JSON error body, or the maintenance page) instead of a 500 and a traceback.

    The connection is checked before the rest of the stack runs, because sessions and
    authentication reach the database from middleware, outside any view; a failure later in
    the view (the server went away mid-request) arrives through process_exception.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _skips_database_check(request.path):
            return self.get_response(request)
        try:
            # Django runs the CONN_HEALTH_CHECKS probe lazily, at the first query: do it now,
            # so a persistent connection the server dropped is replaced, not reported; but only
            # where it can find something (known_good_connection).
            if known_good_connection():
                connection.health_check_done = True  # type: ignore[attr-defined]
            else:
                connection.close_if_health_check_failed()
            connection.ensure_connection()
        except DatabaseError as exc:
            if not outages.database_unavailable(exc):
                raise
            return database_unavailable_response(request, exc)
        outages.database.succeeded()
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if outages.database_unavailable(exception):
            return database_unavailable_response(request, exception)
        return None


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    outages.database.failed(exc)
    discard_broken_connections()
    return service_unavailable_response(request)


def discard_broken_connections() -> None:
    """Close connections an outage left behind, so the next request connects afresh instead
    of reusing a dead persistent (CONN_MAX_AGE) one. A connection inside an atomic block
    belongs to its transaction, which closes it on the way out."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block:
            with suppress(DatabaseError):
                conn.close()


def service_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the API's one error body under /api/, else the maintenance page.

    The page is rendered without the request, so no context processor (user, company,
    messages) runs: it must not need the database it is apologising for."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"detail": outages.UNAVAILABLE_DETAIL, "code": "service_unavailable", "errors": {}}, status=503
        )
    else:
        html = render_to_string("503.html", {"retry_after": outages.RETRY_AFTER_SECONDS})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(outages.RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    quiet(response)
    return response


def quiet(response: ResponseT) -> ResponseT:
    """Keep django.request from logging this 5xx: the outage is logged once, when it starts."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
