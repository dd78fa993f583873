"""The rules of a valid notification, each written once; the model's fields carry them.

Every way in reaches these through the fields (``Model.full_clean()``): the GraphQL
create, single and bulk (``notification.create.creation``), the admin's forms (a
``ModelForm`` validates its instance) and a host project's own ``full_clean()``. Before
they lived on the fields, the API, the admin and the model each had their own copy,
and the copies disagreed (the admin took ``ftp://`` links the API refused).

Each validator checks one field completely, in a fixed order (storable text first,
then presence, then length, then form), so its first error is the one a client is
shown. Their messages and codes are the API's public contract (``FieldError.code``).
"""

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from notification.values import (
    MAX_BODY_CHARACTERS,
    as_e164,
    check_allowed_country,
    reachable_number,
    unstorable_text_problem,
)

#: ``Notification.url``'s column width, and the limit its validator states.
URL_MAX_LENGTH = 2048

TITLE_REQUIRED = "A title is required."
BODY_REQUIRED = "The message body is required."
TITLE_TOO_LONG = "The title has %(show_value)d characters; at most %(limit_value)d are allowed."

#: A notification's link is opened from a text message: only a web address works there
#: (Django's URLField also accepts ftp and ftps).
validate_web_url = URLValidator(
    schemes=["http", "https"], message="Enter a valid http or https URL.", code="invalid"
)


def validate_storable_text(value: str) -> None:
    """Refuse text no database stores (NUL, lone surrogates): code ``invalid``."""
    if problem := unstorable_text_problem(value):
        raise ValidationError(problem, code="invalid")


def validate_title(value: str) -> None:
    """Storable and not only blanks (the length is the column's ``max_length``)."""
    validate_storable_text(value)
    if not value.strip():
        raise ValidationError(TITLE_REQUIRED, code="required")


def validate_body_length(body: str) -> None:
    """Raise ``ValidationError`` (code ``max_length``) for a body SMS cannot carry."""
    if len(body) > MAX_BODY_CHARACTERS:
        raise ValidationError(
            "The body has %(length)d characters; SMS allows at most %(limit)d.",
            code="max_length",
            params={"length": len(body), "limit": MAX_BODY_CHARACTERS},
        )


def validate_sms_body(value: str) -> None:
    """Storable, not only blanks (a blank SMS is never sent), at most 1,600 characters."""
    validate_storable_text(value)
    if not value.strip():
        raise ValidationError(BODY_REQUIRED, code="required")
    validate_body_length(value)


def validate_notification_url(value: str) -> None:
    """Storable, at most ``URL_MAX_LENGTH`` characters, and an http(s) address.

    The length comes before the form: ``URLValidator`` calls any over-long address
    just "invalid", which would hide the real reason.
    """
    validate_storable_text(value)
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError(
            "The URL is longer than %(limit)d characters.",
            code="max_length",
            params={"limit": URL_MAX_LENGTH},
        )
    validate_web_url(value)


def validate_e164_number(value: str) -> None:
    """A number we may store: valid, reachable by SMS, and written in E.164.

    Forms and the API turn national formats into E.164 first
    (``normalize_phone_number``); the column holds only the result, because the send
    job, the opt-out list and the guardrails compare numbers as text.
    """
    _stored_number(value)


def validate_sms_recipient(value: str) -> None:
    """A number we may text: ``validate_e164_number`` and ``SMS_ALLOWED_COUNTRIES``
    (read when validating, so a changed setting holds at once)."""
    check_allowed_country(value, _stored_number(value))


def _stored_number(value: str) -> phonenumbers.PhoneNumber:
    """``value`` parsed once (a bulk create judges 1,000 of them), if it may be stored."""
    number = reachable_number(value)
    if (e164 := as_e164(number)) != value:
        raise ValidationError(
            "%(value)r is not written in E.164; store it as %(e164)s.",
            code="invalid_phone_number",
            params={"value": value, "e164": e164},
        )
    return number
