"""System checks of the portal's own (registered in CoreConfig.ready())."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string


@checks.register(checks.Tags.security, deploy=True)
def csrf_middleware_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Django's security.W003 (and W016, which it gates) look for CsrfViewMiddleware by its
    dotted name; the portal runs a subclass that steps aside for API-key requests
    (apps.core.middleware.CsrfForBrowsers), so W003 is silenced and checked here by class."""
    classes = [import_string(path) for path in settings.MIDDLEWARE]
    if not any(isinstance(cls, type) and issubclass(cls, CsrfViewMiddleware) for cls in classes):
        return [
            checks.Warning(
                "No CSRF middleware (django.middleware.csrf.CsrfViewMiddleware or a subclass) is in MIDDLEWARE.",
                id="core.W003",
            )
        ]
    if not settings.CSRF_USE_SESSIONS and not settings.CSRF_COOKIE_SECURE:
        message = "CSRF_COOKIE_SECURE is not True: the CSRF cookie may be sent over HTTP."
        return [checks.Warning(message, id="core.W016")]
    return []
