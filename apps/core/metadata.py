"""What OPTIONS answers on the API."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request, clone_request


class Metadata(SimpleMetadata):
    """OPTIONS for every API view: DRF's answer (name, description, what it renders and
    parses), with the fields of the view's InputSerializer under `actions` where it has one.
    DRF's own asks for `serializer_class`, which our views do not set (one nested serializer
    per operation), and failed with a 500."""

    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        if getattr(view, "serializer_class", None) is not None:
            return dict(super().determine_actions(request, view))
        input_serializer = getattr(view, "InputSerializer", None)
        if input_serializer is None:
            return {}
        actions: dict[str, Any] = {}
        for method in sorted({"PUT", "POST", "PATCH"} & set(view.allowed_methods)):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
            except (exceptions.APIException, DjangoPermissionDenied, Http404):
                continue
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(input_serializer(context={"request": request, "view": view}))
        return actions
