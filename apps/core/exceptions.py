"""Domain errors raised by services; the API and the pages turn them into field errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from apps.core import outages


class ApplicationError(Exception):
    """A rule was broken. `errors` maps a field name (or "non_field_errors") to messages."""

    status_code = 400
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        if errors is not None:
            self.errors = {key: list(value) for key, value in errors.items()}
        elif field is not None:
            self.errors = {field: [message]}
        else:
            self.errors = {}


class PermissionRefused(ApplicationError):
    """The actor may not do this (a role, or a key where a signed-in member is needed): 403,
    like the API's own permission checks, never a 400."""

    status_code = 403
    default_code = "permission_denied"


class Conflict(ApplicationError):
    """The request lost a race or collides with existing state; retrying may succeed."""

    status_code = 409
    default_code = "conflict"


class ServiceUnavailable(ApplicationError):
    """A dependency the request needs is down; the client should retry after `retry_after`
    seconds. The API answers 503 with a Retry-After header."""

    status_code = 503
    default_code = "service_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message or outages.UNAVAILABLE_DETAIL)
        self.retry_after = retry_after or outages.RETRY_AFTER_SECONDS
