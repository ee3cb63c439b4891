"""Text that people name things with: the one check every name field uses.

A name is shown in pages, lists, CSV exports, receipts, logs and terminals. Control characters
(NUL, which PostgreSQL cannot store; ESC, which starts ANSI escape sequences in a terminal; the
other C0 and C1 codes) and the bidirectional overrides and isolates (U+202A-U+202E,
U+2066-U+2069, which make "gpj.exe" read as "exe.jpg") have no place in one.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from apps.core.exceptions import ApplicationError

# Cc: U+0000-U+001F and U+007F-U+009F; then the embedding/override and isolate controls.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

REFUSED_MESSAGE = "Remove control characters (such as NUL, escape codes or text-direction overrides)."


def has_control_characters(value: str) -> bool:
    return _REFUSED.search(value) is not None


def clean_name(value: object, *, field: str = "name") -> str:
    """A name as typed, stripped of surrounding white space; ApplicationError naming `field`
    when it holds a control character. Emptiness and length stay the caller's rules."""
    text = str(value or "").strip()
    if has_control_characters(text):
        raise ApplicationError(REFUSED_MESSAGE, field=field, code="control_characters")
    return text


def validate_no_control_characters(value: str) -> None:
    """The same rule as a Django validator, for forms and model fields."""
    if has_control_characters(str(value)):
        raise ValidationError(REFUSED_MESSAGE, code="control_characters")
