"""The API's OpenAPI schema, as the API answers: every operation lists the errors it can give,
each with the one error body (apps.core.api.ERROR, the `ApiError` component); request bodies are
offered as JSON unless a view takes files; descriptions are the operation's own, never a base
class's docstring, with the pagination and idempotency notes a client needs."""

from __future__ import annotations

import inspect
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.settings import api_settings

from apps.core.api import ERROR

# What each error status means for a client of this API; the operation's own description names
# the rule-specific codes (`code` in the body) where there are some.
ERROR_DESCRIPTIONS = {
    "400": "The request is not valid: malformed JSON, a NUL or control character, an unknown choice, an "
    "out-of-range value or a broken rule. `errors` names each field with its messages (`non_field_errors` "
    "for the request as a whole); `code` is `invalid`, `parse_error` or the rule's own code.",
    "401": "No credentials, or an API key that is wrong, malformed or revoked (`not_authenticated`, "
    "`authentication_failed`). Send `Authorization: Bearer <key>`.",
    "402": "The payment was declined or failed at Stripe (`code` and `detail` say why); nothing was credited.",
    "403": "Your role (or the API key's) does not allow this, or the user is not a member of any company "
    "(`permission_denied`). Signed-in sessions also need the CSRF token on writes.",
    "404": "No such object in your company (another company's objects are 404 too), or, on a list, no such "
    "page (`not_found`).",
    "409": "The request collides with the current state or with a concurrent request; `code` says which. "
    "With an `Idempotency-Key`: `idempotency_key_in_use` (the first request is still running: retry "
    "later) or `idempotency_key_reused` (the key was used with other parameters).",
    "413": "The request body is larger than the API accepts (`request_too_large`; `detail` names the limit).",
    "429": "Too many requests for this API key or user, or too many failed sign-ins from this address "
    "(`throttled`). Retry after the number of seconds in the `Retry-After` header.",
    "502": "Stripe did not answer or failed (`payment_provider_error`); retry, with the same `Idempotency-Key`.",
    "503": "The service is briefly unavailable (`service_unavailable`): retry after `Retry-After` seconds.",
}
SUCCESS_DESCRIPTIONS = {
    "200": "Success.",
    "201": "Created.",
    "202": "Accepted: the work goes on in the background.",
    "204": "Done; the answer has no body.",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}
WRITES = ("POST", "PUT", "PATCH")
PAGINATION_NOTE = (
    "Paginated: `page` (from 1) and `page_size` (default 50, at most 200); the answer carries `count`, "
    "`next` and `previous` (full URLs or null) and `results`."
)


class AutoSchema(SpectacularAutoSchema):
    def get_description(self) -> str:  # type: ignore[override]
        """The handler's docstring, else the first docstring of the API's own view classes: never
        the tenancy base's or DRF's, which describe how the code works, not the operation."""
        handler = getattr(self.view, self.method.lower(), None)
        doc = inspect.getdoc(handler) if handler is not None and handler.__doc__ else None
        if not doc:
            for cls in type(self.view).__mro__:
                if not cls.__module__.startswith("apps.") or cls.__module__ == "apps.companies.scoping":
                    break
                if cls.__dict__.get("__doc__"):
                    doc = inspect.cleandoc(cls.__doc__ or "")
                    break
        return doc or ""

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        # An empty filter filters nothing (`?date_to=`, `?status=`: the API's rule, README), so
        # each optional filter says it takes an empty value; a client, and schemathesis, then
        # know that such a request is one the API answers with the unfiltered list.
        parameters: list[dict[str, Any]] = list(super()._get_filter_parameters())
        for parameter in parameters:
            if parameter.get("in") == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return parameters

    def map_parsers(self) -> list[Any]:
        # Views on the default parsers take JSON (form bodies are accepted too, but offering three
        # encodings of one body makes generated clients guess): only views that take files name
        # their parsers or their multipart request body.
        if self.view.parser_classes == api_settings.DEFAULT_PARSER_CLASSES:
            return ["application/json"]
        return list(super().map_parsers())

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        notes = []
        if self.method == "GET" and self._is_list_view() and self._get_paginator() is not None:
            notes.append(PAGINATION_NOTE)
        if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
            notes.append(
                "Idempotent with an `Idempotency-Key` header: a retry with the same key answers the first "
                "answer again and changes nothing."
            )
        description = operation.get("description", "")
        for note in notes:
            if note.split(":")[0] not in description:
                description = f"{description}\n\n{note}".strip()
        if description:
            operation["description"] = description
        responses = operation["responses"]
        if notes and notes[-1].startswith("Idempotent") and "409" not in responses:
            responses["409"] = {**responses["400"], "description": ERROR_DESCRIPTIONS["409"]}
            operation["responses"] = responses = dict(sorted(responses.items()))
        for code, response in responses.items():
            if not response.get("description") or response["description"] == "No response body":
                response["description"] = ERROR_DESCRIPTIONS.get(code) or SUCCESS_DESCRIPTIONS.get(code, "")
            if code in ("429", "503"):
                response.setdefault("headers", {}).update(RETRY_AFTER)
        return operation

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["400", "401", "403"]
        if "{" in self.path or (self.method == "GET" and self._is_list_view() and self._get_paginator()):
            codes.append("404")
        if self.method in WRITES:
            codes.append("413")
        codes += ["429", "503"]
        for code in codes:
            if code not in responses:
                # Errors are JSON whatever the view renders otherwise (a CSV list, a PDF).
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ERROR, description=ERROR_DESCRIPTIONS[code]), code, ["application/json"]
                )
        return dict(sorted(responses.items()))


# Fields every resource has, described once here rather than on each of the serializers.
COMMON_FIELDS = {
    "id": "The object's id (a UUID): the `{id}` of its URL.",
    "created_at": "When it was created (ISO 8601, UTC).",
    "updated_at": "When it last changed (ISO 8601, UTC).",
    "currency": "The company's currency (ISO 4217: EUR, GBP or USD); the answer's amounts are in it.",
}


def describe_common_fields(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the description of a common field where its serializer gives none."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for name, field in component.get("properties", {}).items():
            if name in COMMON_FIELDS and not field.get("description") and "$ref" not in field:
                field["description"] = COMMON_FIELDS[name]
    return result
