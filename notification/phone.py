"""Which numbers we text: E.164 only, no extensions, no premium-rate, only the allowed
countries.

``phonenumbers`` (Google's libphonenumber) decides validity so that numbers
Twilio would reject with 21211 are refused at creation time, with a field error,
instead of failing later in a worker. The country allow-list lives here too (and
``notification.guardrails.countries`` names it for the send-time guardrails): the
model's validators (``notification.validators``) sit below the guardrails and must
reach it.
"""

import functools
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
    return as_e164(reachable_number(raw, region))


def as_e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def reachable_number(raw: str, region: str | None = None) -> phonenumbers.PhoneNumber:
    """``raw`` parsed, if it is a number SMS may reach (else ``ValidationError``, as
    ``normalize_phone_number``): for callers that go on to ask more of the number
    without parsing it again. The result is shared: do not change it."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError("A phone number is required.", code="required")
    return _reachable(text, region or app_settings.DEFAULT_PHONE_REGION)


@functools.lru_cache(maxsize=1024)
def _reachable(text: str, region: str) -> phonenumbers.PhoneNumber:
    """Cached because a create asks twice (the API reads the input into E.164, then the
    model's validator judges what it will store: for an E.164 input, the same text),
    and libphonenumber's checks are most of a bulk create's time. A refusal is not
    cached (it raises); the answer depends on the text and region only."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            f"{text!r} is not a phone number: {exc._msg}", code="invalid_phone_number"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{text!r} is not a valid phone number.", code="invalid_phone_number")
    _refuse_unreachable(text, number)
    return number


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


def country_of(e164: str, number: phonenumbers.PhoneNumber | None = None) -> str:
    """ISO 3166 alpha-2 region of an E.164 number ("" when it has none, e.g. +882).

    ``number`` is ``e164`` already parsed, when the caller has it; otherwise the
    answer is cached by text: a claim asks twice per row (the allow-list, then the
    price), and libphonenumber's parse and region match were a tenth of a send
    worker's CPU (README, "Benchmarks").
    """
    if number is None:
        return _country_of_text(e164)
    return _region(number)


@functools.lru_cache(maxsize=8192)
def _country_of_text(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    return _region(number)


def _region(number: phonenumbers.PhoneNumber) -> str:
    region = phonenumbers.region_code_for_number(number) or ""
    return "" if region == phonenumbers.UNKNOWN_REGION or region == "001" else region


def country_refusal(e164: str, number: phonenumbers.PhoneNumber | None = None) -> str | None:
    """Why a number may not be texted under the allow-list, or ``None`` when it may."""
    allowed = allowed_countries()
    if allowed is None:
        return None
    country = country_of(e164, number)
    if country in allowed:
        return None
    where = country or "no country (a non-geographic number)"
    return (
        f"{e164} is in {where}; SMS_ALLOWED_COUNTRIES allows only "
        f"{', '.join(sorted(allowed))}, so it is not sent."
    )


def check_allowed_country(e164: str, number: phonenumbers.PhoneNumber | None = None) -> None:
    """Raise ``ValidationError`` (code ``country_not_allowed``) for a number outside the list."""
    if (message := country_refusal(e164, number)) is not None:
        raise ValidationError(message, code=COUNTRY_CODE)
