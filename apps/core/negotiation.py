"""Content negotiation for the API: an unknown `?format=` is a 400 naming the parameter, as
every other bad parameter is, not DRF's bare 404 (the path exists; the parameter is wrong)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            param = self.settings.URL_FORMAT_OVERRIDE
            given = format_suffix or request.query_params.get(param)
            if not given:
                raise
            known = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise ValidationError({param: [f"Unknown format {given!r}: use one of {known}."]}) from None
