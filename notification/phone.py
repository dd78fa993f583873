"""Phone number normalisation: everything we store and send is E.164.

``phonenumbers`` (Google's libphonenumber) decides validity so that numbers
Twilio would reject with 21211 are refused at creation time, with a field error,
instead of failing later in a worker.
"""

import phonenumbers
from django.core.exceptions import ValidationError

from notification.conf import app_settings

# E.164 allows at most 15 digits after the "+".
E164_MAX_LENGTH = 16


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
