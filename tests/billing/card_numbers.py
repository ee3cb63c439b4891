"""Finding card numbers where none may be: any Luhn-valid run of 13 to 19 digits (spaces or
dashes allowed between them) in the database's text and JSON columns, or in log output."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import connection

# Digits with at most one space or dash between them, standing alone: not part of a longer run,
# nor of a word (a digit run inside a hex digest or a token is not a card number).
CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])")
# UUIDs contain digit runs joined by dashes; they are ids, not cards.
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")
# Columns joined with a separator no card number can span.
JOIN = " | "


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_numbers_in(text: str) -> list[str]:
    found = []
    for match in CANDIDATE.finditer(UUID.sub(" ", text)):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append(digits)
    return found


def card_numbers_in_texts(texts: Iterable[str]) -> list[str]:
    return [number for text in texts for number in card_numbers_in(text)]


def card_numbers_in_database() -> dict[str, list[str]]:
    """{table: [numbers]} over every text and JSON column of every table, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s) ORDER BY table_name, ordinal_position",
            [list(TEXT_TYPES)],
        )
        columns: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            columns.setdefault(table, []).append(column)
        if not columns:
            return {}
        quote = connection.ops.quote_name
        selects, params = [], []
        for table, names in columns.items():
            joined = "concat_ws(%s, " + ", ".join(f"{quote(name)}::text" for name in names) + ")"
            # Identifiers come from the catalogue and are quoted; values are parameters.
            selects.append(f"SELECT %s, {joined} FROM {quote(table)} WHERE {joined} ~ '[0-9]([ -]?[0-9]){{12}}'")  # noqa: S608
            params += [table, JOIN, JOIN]
        cursor.execute(" UNION ALL ".join(selects), params)
        found: dict[str, list[str]] = {}
        for table, text in cursor.fetchall():
            numbers = card_numbers_in(text or "")
            if numbers:
                found.setdefault(table, []).extend(numbers)
    return found
