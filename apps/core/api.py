"""The API's shared pieces: the single error body shape and its exception handler. (The
company-scoped base view is the tenant app's: apps.companies.scoping.)"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core import outages
from apps.core.exceptions import ApplicationError, ServiceUnavailable
from apps.core.fields import TextField
from apps.core.middleware import discard_broken_connections, quiet, request_too_large_detail

logger = logging.getLogger(__name__)


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error detail as {field: [messages]}; nested fields joined with dots."""
    if isinstance(detail, dict):
        errors: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            if isinstance(value, dict):
                for sub, messages in _flatten(value).items():
                    errors[f"{name}.{sub}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub, messages in _flatten(item).items():
                        errors[f"{name}.{index}.{sub}"] = messages
            else:
                errors[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
        return errors
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {}


# The one error body (exception_handler below), for the schema's error responses.
ERROR = inline_serializer(
    "ApiError",
    {
        "detail": TextField(help_text="What went wrong, for a person: the first field message if one."),
        "code": TextField(
            help_text="What went wrong, for a program: `invalid`, `parse_error`, `not_authenticated`, "
            "`permission_denied`, `not_found`, `throttled`, or the rule's own code (each operation names its own)."
        ),
        "errors": serializers.DictField(
            child=serializers.ListField(child=TextField()),
            help_text="Each field that is not valid, with its messages (`non_field_errors`: the request as a "
            "whole; nested fields are joined with dots, `allowed_ips.0.address`). Empty for other errors.",
        ),
    },
)


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error has the same body: {"detail": str, "code": str, "errors": {field: [str]}}."""
    if outages.database_unavailable(exc):
        # DRF catches the view's exceptions before any middleware sees them.
        outages.database.failed(exc)
        discard_broken_connections()
        exc = ServiceUnavailable()
    if isinstance(exc, ApplicationError):
        answer = Response(error_body(exc.message, exc.code, exc.errors), status=exc.status_code)
        if isinstance(exc, ServiceUnavailable):
            answer["Retry-After"] = str(exc.retry_after)
            quiet(answer)
        return answer
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is its HTML 400 page and a logged "suspicious operation".
        return Response(error_body(request_too_large_detail(), "request_too_large"), status=413)
    if isinstance(exc, TooManyFieldsSent):
        message = f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields may be sent."
        return Response(error_body(message, "too_many_fields"), status=400)
    if isinstance(exc, DataError):
        # The last line of defence for a value the database refuses (out of range, malformed):
        # the fields' own checks should have caught it, so say which view let it through.
        view = context.get("view")
        logger.warning("database refused a value in %s: %s", type(view).__name__, str(exc).splitlines()[0])
        return Response(error_body("A value is out of the range this API accepts.", "invalid"), status=400)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = next(iter(errors.values()), ["Invalid input."])[0]
        response.data = error_body(first if len(errors) == 1 else "Some fields are not valid.", "invalid", errors)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = detail.code if hasattr(detail, "code") else exc.default_code
        response.data = error_body(str(detail), str(code))
    return response


def created(data: Any, *, secret: bool = False) -> Response:
    """201 with `data`; `secret`: the answer carries a secret shown once (a key, a password),
    which no cache, proxy or browser history may keep."""
    response = Response(data, status=status.HTTP_201_CREATED)
    if secret:
        response["Cache-Control"] = "no-store"
    return response
