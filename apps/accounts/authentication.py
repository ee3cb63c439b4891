from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.models import ApiKey
from apps.accounts.selectors import api_key_for_secret, api_key_from_memory
from apps.accounts.services import api_key_touch
from apps.core.middleware import client_ip
from apps.core.throttling import auth_failure_check, auth_failure_record


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer sm_xxxxxxxx_<secret>`. request.auth is the ApiKey and
    request.user the member who created it (for attribution only: the key's own
    role and company decide what it may do)."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts and parts[0] != self.keyword:
            return None
        if len(parts) == 2:
            api_key = api_key_from_memory(key=parts[1])
            if api_key is not None:
                # Verified by this process seconds ago: the failed-authentication count of
                # the source is read by the throttle, in its one round trip to Redis.
                request.auth_failures_unchecked = True
                return self._accepted(request, api_key)
        # A source that keeps failing is refused before its next key is even looked at.
        auth_failure_check(request)
        try:
            return self._authenticate(request, parts)
        except exceptions.AuthenticationFailed:
            auth_failure_record(request)
            raise

    def _authenticate(self, request: Any, parts: list[str]) -> tuple[Any, ApiKey]:
        if len(parts) != 2:  # also only white space (a non-breaking space counts as one)
            raise exceptions.AuthenticationFailed("Send the key as `Authorization: Bearer <key>`.")
        api_key = api_key_for_secret(key=parts[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid.")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        if not api_key.created_by.is_active:
            raise exceptions.AuthenticationFailed("This API key's creator was deactivated.")
        return self._accepted(request, api_key)

    @staticmethod
    def _accepted(request: Any, api_key: ApiKey) -> tuple[Any, ApiKey]:
        api_key_touch(api_key=api_key, ip_address=client_ip(request))
        return api_key.created_by, api_key

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "apps.accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API key created on the API keys page."}
