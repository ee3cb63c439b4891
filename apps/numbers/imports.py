"""Reading and checking Online Number stock: one CSV row, or one row staff edit in the admin.

Pure functions, no writes: `apps.numbers.services` runs the import with them, and the
admin form checks a single row with the same rules, so a rule is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django_countries import countries
from phonenumber_field.phonenumber import PhoneNumber as FieldPhoneNumber
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
)

from apps.core.csvfiles import Row
from apps.core.exceptions import ApplicationError
from apps.core.phone import TYPE_NAMES, e164, parse_number
from apps.numbers.models import OnlineNumber

CURRENCIES = ("usd", "eur", "gbp")
PRICE_FIELDS = tuple(f"price_{months}m_{currency}" for currency in CURRENCIES for months in (3, 12))
COLUMNS = ("number", "country", "area", "type", *PRICE_FIELDS)
# The CSV says "type"; the model says number_type.
FIELD_OF_COLUMN = {"type": "number_type"}
COLUMN_OF_FIELD = {"number_type": "type"}
MAX_PRICE = Decimal("999999.9999")
PLACES = Decimal("0.0001")  # DecimalField(max_digits=10, decimal_places=4)
MAX_AREA = 100
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_ROWS = 200_000
TEMPLATE = ",".join(COLUMNS) + "\n+442079460958,GB,London,geographic,4.00,14.00,3.70,13.00,3.20,11.00\n"

# The libphonenumber types each stock type may have. The stock types are coarse:
# non-geographic VoIP and UAN ranges (UK 056, 03) are sold with the geographic DIDs.
ALLOWED_KINDS = {
    OnlineNumber.Type.GEOGRAPHIC: {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.VOIP,
        PhoneNumberType.UAN,
    },
    OnlineNumber.Type.MOBILE: {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    OnlineNumber.Type.TOLL_FREE: {PhoneNumberType.TOLL_FREE},
}
SELLABLE_KINDS = set().union(*ALLOWED_KINDS.values())
TYPES = frozenset(OnlineNumber.Type.values)


class CheckedNumber(FieldPhoneNumber):
    """A number this module has checked and formatted. Saving it skips the model field's
    own parse-check-format, a third of the time of a large import."""

    e164_text = ""

    def is_valid(self) -> bool:
        return True

    def format_as(self, format: int) -> str:
        if format == PhoneNumberFormat.E164:
            return self.e164_text
        return str(super().format_as(format))


@dataclass(frozen=True)
class StockValues:
    """One stock row, checked: the number in E.164 and the prices as Decimals."""

    number: CheckedNumber
    e164: str
    country: str
    area: str
    number_type: str
    prices: dict[str, Decimal]

    def model_fields(self) -> dict[str, Any]:
        return {
            "number": self.e164,
            "country": self.country,
            "area": self.area,
            "number_type": self.number_type,
            **self.prices,
        }


def _clean_price(value: Any) -> Decimal:
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValueError("is required")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"“{text}” is not a number") from None
    if not price.is_finite():
        raise ValueError(f"“{text}” is not a number")
    if price < 0:
        raise ValueError("cannot be negative")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValueError("has more than 4 decimal places")
    if price > MAX_PRICE:
        raise ValueError(f"is more than {MAX_PRICE:,}")
    return price.quantize(PLACES)


def _clean_type(value: Any) -> str:
    text = str(value or "").strip().lower().replace("-", "_").replace(" ", "_")
    if text not in TYPES:
        raise ValueError(f"“{value}” is not one of {', '.join(OnlineNumber.Type.values)}")
    return text


def _kind_in(number: PhoneNumber, region: str) -> int:
    """The number's type in the region's numbering plan; UNKNOWN when it is not a valid
    number of that region."""
    if not phonenumbers.is_valid_number_for_region(number, region):
        return PhoneNumberType.UNKNOWN
    return int(phonenumbers.number_type(number))


def _parse_number(number: Any, code: str, errors: dict[str, list[str]]) -> tuple[CheckedNumber | None, int]:
    """The number, valid and of the row's country, and its type; problems go into `errors`."""
    text = str(number or "").strip()
    parsed: PhoneNumber | None = None
    kind = PhoneNumberType.UNKNOWN
    try:
        candidate = phonenumbers.parse(text, code or None) if text and code else None
    except NumberParseException:
        candidate = None
    if candidate is not None:
        kind = _kind_in(candidate, code)
    if kind != PhoneNumberType.UNKNOWN:
        parsed = candidate
    else:
        try:
            # The full check, for its clear message. National numbers ("020 7946 0958")
            # are read in the row's own country.
            parsed = parse_number(text, region=code or None, field="number")
        except ApplicationError as error:
            errors["number"] = [error.message]
            return None, PhoneNumberType.UNKNOWN
        region = phonenumbers.region_code_for_number(parsed)
        if code and region != code:
            errors.setdefault("country", []).append(f"{e164(parsed)} is a number of {region}, not {code}.")
        kind = phonenumbers.number_type(parsed)
    assert parsed is not None
    checked = CheckedNumber()
    checked.merge_from(parsed)
    checked.e164_text = e164(parsed)
    return checked, kind


def clean_stock_values(
    *, number: Any, country: Any, area: Any, number_type: Any, prices: Mapping[str, Any]
) -> StockValues:
    """Check one stock row. Raises ApplicationError with every problem, by model field name."""
    errors: dict[str, list[str]] = {}
    code = str(country or "").strip().upper()
    if not code:
        errors["country"] = ["Enter the country: two letters such as GB or US."]
    elif code not in countries or code not in phonenumbers.SUPPORTED_REGIONS:
        errors["country"] = [f"“{country}” is not a country code; use two letters such as GB or US."]
        code = ""
    kind = ""
    try:
        kind = _clean_type(number_type)
    except ValueError as error:
        errors["number_type"] = [f"The type {error}."]
    parsed, number_kind = _parse_number(number, code, errors)
    formatted = parsed.e164_text if parsed is not None else ""
    if parsed is not None:
        if number_kind not in SELLABLE_KINDS:
            name = TYPE_NAMES.get(number_kind, "unknown")
            errors["number"] = [
                f"{formatted} is a {name} number: only geographic, mobile and toll-free numbers are sold."
            ]
        elif kind and number_kind not in ALLOWED_KINDS[OnlineNumber.Type(kind)]:
            errors.setdefault("number_type", []).append(
                f"{formatted} is a {TYPE_NAMES.get(number_kind, 'unknown')} number, not {kind.replace('_', '-')}."
            )
    area_text = str(area or "").strip()
    if len(area_text) > MAX_AREA:
        errors["area"] = [f"The area has more than {MAX_AREA} characters."]
    cleaned: dict[str, Decimal] = {}
    for name in PRICE_FIELDS:
        try:
            cleaned[name] = _clean_price(prices.get(name))
        except ValueError as error:
            errors[name] = [f"{name} {error}."]
    if errors or parsed is None:
        first = next(iter(errors.values()))[0]
        raise ApplicationError(first, errors=errors)
    return StockValues(number=parsed, e164=formatted, country=code, area=area_text, number_type=kind, prices=cleaned)


def clean_row(row: Row) -> StockValues:
    """Check one CSV row. Raises ApplicationError whose message names every problem."""
    if "__width__" in row.values:
        raise ApplicationError(f"The row has {row.values['__width__']} fields; expected {len(COLUMNS)}.")
    values = row.values
    try:
        return clean_stock_values(
            number=values["number"],
            country=values["country"],
            area=values["area"],
            number_type=values["type"],
            prices={name: values[name] for name in PRICE_FIELDS},
        )
    except ApplicationError as error:
        raise ApplicationError(describe(error)) from None


def describe(error: ApplicationError) -> str:
    """Every problem of a row on one line, each after its column: "number: … ; price_3m_usd: …"."""
    if not error.errors:
        return error.message
    parts = []
    for field, messages in error.errors.items():
        column = COLUMN_OF_FIELD.get(field, field)
        for message in messages:
            parts.append(message if message.startswith(column) else f"{column}: {message}")
    return "; ".join(parts)
