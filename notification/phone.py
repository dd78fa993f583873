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
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
