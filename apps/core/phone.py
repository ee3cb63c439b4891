"""E.164 everywhere: parse what people type, in their company's country, with clear errors."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType, ValidationResult

from apps.core.exceptions import ApplicationError

_REASONS = {
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_COUNTRY_CODE: "has no valid country code",
    ValidationResult.INVALID_LENGTH: "has the wrong length for its country",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "lacks its area code",
}

TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline or mobile",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "corporate",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


def parse_number(value: str, *, region: str | None, field: str = "number") -> PhoneNumber:
    """A valid number from "+44 20 7946 0958" or, read in `region`, "020 7946 0958".

    Raises ApplicationError on the field for anything that is not a valid number.
    """
    text = (value or "").strip()
    if not text:
        raise ApplicationError("Enter a phone number.", field=field)
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except NumberParseException as error:
        if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            message = "Start the number with + and its country code, e.g. +44 20 7946 0958."
        elif error.error_type == NumberParseException.TOO_SHORT_NSN:
            message = f"{text} is too short to be a phone number."
        else:
            message = f"{text} is not a phone number."
        raise ApplicationError(message, field=field) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        raise ApplicationError(f"{text} {_REASONS.get(reason, 'is not possible')}.", field=field)
    if not phonenumbers.is_valid_number(number):
        raise ApplicationError(f"{text} is not a valid number in any numbering plan.", field=field)
    return number


def e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def number_type_name(number: PhoneNumber) -> str:
    return TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")


def region_of(number: PhoneNumber) -> str:
    return phonenumbers.region_code_for_number(number) or ""
