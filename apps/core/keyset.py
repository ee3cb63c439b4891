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


def keyset_page(
    queryset: QuerySet[Any], *, cursor: Cursor | None, size: int, time_field: str, id_field: str = "id"
) -> KeysetPage:
    """One page of `queryset` (rows as dicts from .values(), with `time_field` and `id_field`),
    newest first. One query."""
    rows: list[Any]
    if cursor is None or cursor.older:
        if cursor is not None:
            queryset = queryset.filter(
                Q(**{f"{time_field}__lt": cursor.at}) | Q(**{time_field: cursor.at, f"{id_field}__lt": cursor.id}),
                **{f"{time_field}__lte": cursor.at},
            )
        rows = list(queryset.order_by(f"-{time_field}", f"-{id_field}")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        older = more
        newer = cursor is not None and bool(rows)
    else:
        queryset = queryset.filter(
            Q(**{f"{time_field}__gt": cursor.at}) | Q(**{time_field: cursor.at, f"{id_field}__gt": cursor.id}),
            **{f"{time_field}__gte": cursor.at},
        )
        rows = list(queryset.order_by(time_field, id_field)[: size + 1])
        more = len(rows) > size
        rows = rows[:size][::-1]
        newer = more
        older = bool(rows)
    if not rows:
        return KeysetPage([], None, None)

    def key(row: Any, older: bool) -> Cursor:
        return Cursor(older=older, at=row[time_field], id=row[id_field])

    return KeysetPage(
        rows,
        next=key(rows[-1], True) if older else None,
        previous=key(rows[0], False) if newer else None,
    )
