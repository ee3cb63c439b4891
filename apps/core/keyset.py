"""Keyset ("newer/older") pagination over a list ordered by (a time, id), newest first.

A page is the rows strictly after the cursor's row in the list's order: `WHERE time <= t AND
(time < t OR id < i) ORDER BY time DESC, id DESC LIMIT n + 1`. The redundant `time <= t` is
what lets PostgreSQL start its index scan at the cursor (it does not derive that bound from
the OR), so the millionth row costs what the first does; no page counts the rows (no COUNT(*)).
A cursor is opaque to clients: which way it reads ("o" older, "n" newer) and its row's key."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.serializers import Serializer
from rest_framework.utils.urls import replace_query_param

from apps.core.exceptions import ApplicationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAD_CURSOR = "This cursor is not valid: use the next or previous link of a page."


@dataclass(frozen=True)
class Cursor:
    older: bool  # the rows after this key (older), else the rows before it (newer)
    at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.at - EPOCH) // timedelta(microseconds=1)
        text = f"{'o' if self.older else 'n'}:{micros}:{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The cursor a page link carries; ApplicationError (a 400 naming `cursor`) if it is not one."""
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            way, micros, key = text.split(":")
            if way not in ("o", "n"):
                raise ValueError(way)
            return cls(older=way == "o", at=EPOCH + timedelta(microseconds=int(micros)), id=int(key))
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
            raise ApplicationError(BAD_CURSOR, code="invalid", errors={"cursor": [BAD_CURSOR]}) from None


@dataclass
class KeysetPage:
    rows: list[Any]
    next: Cursor | None  # older rows
    previous: Cursor | None  # newer rows


def _after(time_field: str | None, id_field: str, cursor: Cursor, way: str) -> Q:
    """The rows after the cursor's row going `way` ("lt": older, "gt": newer)."""
    if time_field is None:
        return Q(**{f"{id_field}__{way}": cursor.id})
    at = cursor.at
    return Q(**{f"{time_field}__{way}e": at}) & (
        Q(**{f"{time_field}__{way}": at}) | Q(**{time_field: at, f"{id_field}__{way}": cursor.id})
    )


def keyset_page(
    queryset: QuerySet[Any], *, cursor: Cursor | None, size: int, time_field: str | None, id_field: str = "id"
) -> KeysetPage:
    """One page of `queryset` (rows as dicts from .values(), with `time_field` and `id_field`),
    newest first. One query. Without a `time_field` the list is ordered by `id_field` alone
    (a table whose ids grow with time, e.g. the append-only ledger, on its (account, id) index)."""
    order = [id_field] if time_field is None else [time_field, id_field]
    rows: list[Any]
    if cursor is None or cursor.older:
        if cursor is not None:
            queryset = queryset.filter(_after(time_field, id_field, cursor, "lt"))
        rows = list(queryset.order_by(*(f"-{name}" for name in order))[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        older = more
        newer = cursor is not None and bool(rows)
    else:
        queryset = queryset.filter(_after(time_field, id_field, cursor, "gt"))
        rows = list(queryset.order_by(*order)[: size + 1])
        more = len(rows) > size
        rows = rows[:size][::-1]
        newer = more
        older = bool(rows)
    if not rows:
        return KeysetPage([], None, None)

    def key(row: Any, older: bool) -> Cursor:
        return Cursor(older=older, at=EPOCH if time_field is None else row[time_field], id=row[id_field])

    return KeysetPage(
        rows,
        next=key(rows[-1], True) if older else None,
        previous=key(rows[0], False) if newer else None,
    )


# --- In the API ------------------------------------------------------------------------------

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
PAGE_SIZE_ERROR = f"Give a whole number from 1 to {MAX_PAGE_SIZE}."
NO_PAGE_NUMBERS = "This list is paged by cursor, not by page number: follow the next and previous links."


def keyset_page_size(request: Request) -> int:
    """`page_size` (1 to MAX_PAGE_SIZE, default PAGE_SIZE); a 400 naming it otherwise."""
    text = request.query_params.get("page_size")
    if not text:
        return PAGE_SIZE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise ApplicationError(PAGE_SIZE_ERROR, field="page_size")
    return int(text)


def keyset_api_page(
    request: Request, queryset: QuerySet[Any], *, time_field: str | None, refuse_page_numbers: bool = False
) -> tuple[KeysetPage, dict[str, str | None]]:
    """The page a request asks for (its `cursor` and `page_size`) and its links {next, previous}.
    `refuse_page_numbers`: a `page` parameter is a 400 naming it (a list that used page numbers
    before: a client counting pages would otherwise read the first page again and again)."""
    if refuse_page_numbers and "page" in request.query_params:
        raise ApplicationError(NO_PAGE_NUMBERS, field="page")
    size = keyset_page_size(request)
    text = request.query_params.get("cursor")
    page = keyset_page(queryset, cursor=Cursor.decode(text) if text else None, size=size, time_field=time_field)
    url = request.build_absolute_uri()
    links = {
        "next": replace_query_param(url, "cursor", page.next.encode()) if page.next else None,
        "previous": replace_query_param(url, "cursor", page.previous.encode()) if page.previous else None,
    }
    return page, links


def keyset_parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter("cursor", OpenApiTypes.STR, description="From a page's next or previous link."),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            description=f"Results per page: default {PAGE_SIZE}, at most {MAX_PAGE_SIZE}.",
        ),
    ]


def keyset_page_serializer(name: str, child: Serializer[Any], *, older: str, newer: str) -> Serializer[Any]:
    """The schema of a keyset page: {next, previous, results} (no count)."""
    return inline_serializer(  # type: ignore[no-any-return]
        name,
        {
            "next": serializers.URLField(allow_null=True, help_text=f"The next page: {older}; null on the last."),
            "previous": serializers.URLField(
                allow_null=True, help_text=f"The previous page: {newer}; null on the first."
            ),
            "results": child,
        },
    )
