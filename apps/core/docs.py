"""The API's OpenAPI schema and its interactive docs, public or for signed-in callers only as
API_DOCS_PUBLIC says (public by default: the API is open source, and its schema holds no
company's data)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import permissions
from rest_framework.renderers import BaseRenderer, JSONRenderer


class _DocsAccess:
    def get_permissions(self) -> list[permissions.BasePermission]:
        if settings.API_DOCS_PUBLIC:
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_renderers(self) -> list[BaseRenderer]:
        # OPTIONS and errors (401 when not public) are JSON like the rest of the API; the
        # docs page's HTML renderer needs a template these answers do not have.
        request = getattr(self, "request", None)
        if request is not None and request.method == "OPTIONS":
            return [JSONRenderer()]
        return super().get_renderers()  # type: ignore[misc,no-any-return]

    def handle_exception(self, exc: Exception) -> Any:
        self.request.accepted_renderer = JSONRenderer()  # type: ignore[attr-defined]
        self.request.accepted_media_type = JSONRenderer.media_type  # type: ignore[attr-defined]
        return super().handle_exception(exc)  # type: ignore[misc]


class SchemaView(_DocsAccess, SpectacularAPIView):
    pass


class DocsView(_DocsAccess, SpectacularSwaggerSplitView):
    """Swagger UI with its set-up script served as a file (`?script`), not inline, so the
    page keeps the site's Content-Security-Policy."""

    template_name = "core/swagger_ui.html"
