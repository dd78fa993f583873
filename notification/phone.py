"""Which numbers we text: E.164 only, no extensions, no premium-rate, only the allowed
countries.

``phonenumbers`` (Google's libphonenumber) decides validity so that numbers
Twilio would reject with 21211 are refused at creation time, with a field error,
instead of failing later in a worker. The country allow-list lives here too (and
``notification.guardrails.countries`` names it for the send-time guardrails): the
model's validators (``notification.validators``) sit below the guardrails and must
reach it.
"""

import re

import phonenumbers
from django.core.exceptions import ValidationError

from notification.conf import app_settings

# E.164 allows at most 15 digits after the "+".
E164_MAX_LENGTH = 16

#: The shape of a stored number; whether it is a real one is ``normalize_phone_number``'s.
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")

ALL_COUNTRIES = "*"
COUNTRY_CODE = "country_not_allowed"


def looks_like_e164(text: str) -> bool:
    """Whether ``text`` is written as E.164 (``+`` and up to 15 digits), valid or not."""
    return bool(_E164.match(text))


def normalize_phone_number(raw: str, region: str | None = None) -> str:
    """Return ``raw`` in E.164 or raise ``ValidationError`` (code ``invalid_phone_number``).

    National formats are accepted for ``DEFAULT_PHONE_REGION`` (or ``region``).
    Extensions and premium-rate numbers are refused (``_refuse_unreachable``).
    """
    region = region or app_settings.DEFAULT_PHONE_REGION
    text = (raw or "").strip()
    if not text:
        raise ValidationError("A phone number is required.", code="required")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            f"{text!r} is not a phone number: {exc._msg}", code="invalid_phone_number"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{text!r} is not a valid phone number.", code="invalid_phone_number")
    _refuse_unreachable(text, number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _refuse_unreachable(text: str, number: phonenumbers.PhoneNumber) -> None:
    """Refuse numbers that parse and validate but must never be texted.

    An extension cannot receive an SMS, and E.164 has no room for it: storing
    the number without it would text the switchboard instead of the person, so
    it is refused rather than dropped. Premium-rate numbers (``+1 900``,
    ``+44 90``...) bill the sender per message: a GraphQL client that may
    create notifications must not be able to make us pay them. The number type
    is libphonenumber's, so the list follows each country's numbering plan.
    """
    if number.extension:
        raise ValidationError(
            f"{text!r} has an extension ({number.extension}); SMS cannot reach an extension.",
            code="invalid_phone_number",
        )
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.PREMIUM_RATE:
        raise ValidationError(
            f"{text!r} is a premium-rate number; SMS to premium-rate numbers are refused.",
            code="invalid_phone_number",
        )


# --- the country allow-list (SMS_ALLOWED_COUNTRIES) ---------------------------------


def allowed_countries() -> frozenset[str] | None:
    """The allowed ISO codes, upper case; ``None`` means every country (``*``).

    Empty means the default: the region of ``DEFAULT_PHONE_REGION``, the country
    the project's national numbers are read in.
    """
    raw = app_settings.SMS_ALLOWED_COUNTRIES
    items = raw if isinstance(raw, list | tuple | set | frozenset) else str(raw or "").split(",")
    codes = {str(item).strip().upper() for item in items if str(item).strip()}
    if ALL_COUNTRIES in codes:
        return None
    return frozenset(codes or {str(app_settings.DEFAULT_PHONE_REGION).upper()})


def country_of(e164: str) -> str:
    """ISO 3166 alpha-2 region of an E.164 number ("" when it has none, e.g. +882)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number) or ""
    return "" if region == phonenumbers.UNKNOWN_REGION or region == "001" else region


def country_refusal(e164: str) -> str | None:
    """Why a number may not be texted under the allow-list, or ``None`` when it may."""
    allowed = allowed_countries()
    if allowed is None:
        return None
    country = country_of(e164)
    if country in allowed:
        return None
    where = country or "no country (a non-geographic number)"
    return (
        f"{e164} is in {where}; SMS_ALLOWED_COUNTRIES allows only "
        f"{', '.join(sorted(allowed))}, so it is not sent."
    )


def check_allowed_country(e164: str) -> None:
    """Raise ``ValidationError`` (code ``country_not_allowed``) for a number outside the list."""
    if (message := country_refusal(e164)) is not None:
        raise ValidationError(message, code=COUNTRY_CODE)
