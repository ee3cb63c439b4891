"""Pieces the list filters share (django-filter FilterSets, declared on the views and read by
DjangoFilterBackend, so a bad value is a 400 naming the field and the schema lists each one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from apps.core.exceptions import ApplicationError


def choice_filter(choices: type[models.Choices], **kwargs: Any) -> django_filters.ChoiceFilter:
    """One of a model's choices; anything else is refused with the choices named."""
    return django_filters.ChoiceFilter(
        choices=choices.choices,
        error_messages={"invalid_choice": f"Choose one of {', '.join(str(v) for v in choices.values)}."},
        **kwargs,
    )


class _StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); anything else is an error, where django-filter's boolean quietly
    filters nothing (`?auto_renew=yes` listed every row)."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # None: no filter
        text = str(value).strip().lower() if value is not None else ""
        if text in ("", "true", "1", "false", "0"):
            return None if not text else text in ("true", "1")
        raise forms.ValidationError("Send true or false.", code="invalid")

    def validate(self, value: Any) -> None:
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = _StrictBooleanField


class _CleanedCharField(forms.CharField):
    """Text put through a domain cleaner; the cleaner's ApplicationError is this field's error."""

    def __init__(self, *, clean_value: Callable[[str], Any], **kwargs: Any) -> None:
        self.clean_value = clean_value
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        try:
            return self.clean_value(value)
        except ApplicationError as error:
            raise forms.ValidationError(error.message, code=error.code) from None


class CleanedCharFilter(django_filters.CharFilter):
    """A text filter whose value a domain function cleans (`clean_value=`): its result is what
    the filter (or its `method`) receives, its refusal a 400 naming the filter."""

    field_class = _CleanedCharField


class _ChoiceByIdField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except ValidationError as error:  # a malformed id says the same as an unknown one
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice") from error


class ChoiceByIdFilter(django_filters.ModelChoiceFilter):
    """One of the tenant's rows by its public id (`to_field_name`): a malformed id is refused
    with the same message as an unknown one, not a UUID parser's."""

    field_class = _ChoiceByIdField


# The widest UTC offsets in use anywhere (UTC-12:00 to UTC+14:00). PostgreSQL refuses offsets
# past 15:59 with an error, which made `?since=...+16:00` a 500.
MAX_UTC_OFFSET = timedelta(hours=14)


class _UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        offset = parsed.utcoffset() if parsed is not None else None
        if parsed is None or offset is None:
            return parsed
        if abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError(
                "Use a UTC offset between -12:00 and +14:00 (or Z), e.g. 2026-01-01T00:00:00Z.",
                code="invalid_offset",
            )
        return parsed.astimezone(UTC)


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time; an offset outside the ones in use is a 400 naming the filter."""

    field_class = _UtcIsoDateTimeField
