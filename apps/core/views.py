from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

from apps.core import outages
from apps.core.health import run_checks
from apps.core.middleware import database_unavailable_response, quiet


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Each dependency's state, for monitoring and operators (/health/): 200 when PostgreSQL,
    Redis and every enabled edge node answer, else 503 naming what failed; Stripe's state is
    reported without changing the code. Needs neither the session nor the user, so it can
    report the database down itself (DatabaseUnavailableMiddleware lets it through)."""
    return _health(dependencies=True)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The web process's own health, for docker-compose and load balancers (/healthz): as
    /health/ without the edge nodes, which do not stop this process serving (and which may
    themselves wait for it to be healthy)."""
    return _health(dependencies=False)


def _health(*, dependencies: bool) -> JsonResponse:
    healthy, checks = run_checks(dependencies=dependencies)
    degraded = not healthy or not all(check["ok"] for check in checks.values())
    body = {"status": "degraded" if degraded else "ok", "checks": checks}
    response = JsonResponse(body, status=200 if healthy else 503)
    return quiet(response)  # a failed check is logged once per outage (apps.core.outages), not per poll


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found.", "code": "not_found", "errors": {}}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]
    if exc is not None and outages.database_unavailable(exc):
        # The last net, for a database failure outside any view (a middleware's response
        # phase): DatabaseUnavailableMiddleware catches the rest. Logged once per outage.
        return database_unavailable_response(request, exc)
    if _wants_json(request):
        return JsonResponse({"detail": "Server error.", "code": "server_error", "errors": {}}, status=500)
    return render(request, "500.html", status=500)


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page's <link rel="icon"> says: the app's icon,
    not a 404 in every log."""
    return redirect(static("img/favicon.svg"), permanent=True)
