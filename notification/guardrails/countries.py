"""The country allow-list (``SMS_ALLOWED_COUNTRIES``).

SMS pumping ("artificially inflated traffic") makes a sender pay for messages to
number ranges an attacker profits from, usually in a few countries far from the
business's own; Twilio's Geo Permissions stop it per account, invisibly to the
app (https://www.twilio.com/docs/messaging/guides/sms-geo-permissions). The app's
own list refuses such numbers where the client can see why: at create time as a
field error, and at send time (for rows made with the ORM or before the setting
changed) as a failure without any request to Twilio.

The country is libphonenumber's region of the number (ISO 3166 alpha-2), so
``+1 416`` is ``CA``, not ``US``: a North American business that texts Canada
lists both.
"""

from functools import lru_cache

import phonenumbers
from django.core.exceptions import ValidationError

from notification.conf import app_settings

ALL_COUNTRIES = "*"
CODE = "country_not_allowed"


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


@lru_cache(maxsize=8192)
def country_of(e164: str) -> str:
    """ISO 3166 alpha-2 region of an E.164 number ("" when it has none, e.g. +882).

    Cached: a claim asks twice per row (the allow-list, then the price), and
    libphonenumber's region match was a tenth of a send worker's CPU (README,
    "Benchmarks"). The region of a number never changes within a process.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number) or ""
    return "" if region == phonenumbers.UNKNOWN_REGION or region == "001" else region


def refusal(e164: str) -> str | None:
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


def check_allowed(e164: str) -> None:
    """Raise ``ValidationError`` (code ``country_not_allowed``) for a number outside the list."""
    if (message := refusal(e164)) is not None:
        raise ValidationError(message, code=CODE)
