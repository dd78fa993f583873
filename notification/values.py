"""The values every layer shares: phone numbers, storable text, SMS segments, ids.

Which numbers we text: E.164 only, no extensions, no premium-rate, only the allowed
countries.

``phonenumbers`` (Google's libphonenumber) decides validity so that numbers
Twilio would reject with 21211 are refused at creation time, with a field error,
instead of failing later in a worker. The country allow-list lives here too (and
``notification.guardrails.places`` names it for the send-time guardrails): the
model's validators (``notification.validators``) sit below the guardrails and must
reach it.

Text (was ``notification.text``):

Text that no database can store: the one check every text input goes through.

PostgreSQL refuses NUL in text (SQLite stores it); neither can store a lone UTF-16
surrogate (``\\ud800``, which JSON's ``\\ud800`` escape produces): encoding it to
UTF-8 fails with ``'utf-8' codec can't encode``, which reached clients as raw
exception text. Refused everywhere, alike, with a message a person can act on.

Segments (was ``notification.segments``):

SMS segment counting, by the GSM-7 and UCS-2 rules Twilio bills and paces by.

Batches, Twilio's per-sender queue and the compose counter in the frontend are
all measured in segments, not messages, so this must match Twilio exactly:

* GSM-7: 160 septets in a single segment, 153 per segment once split.
  Extension-table characters take two septets and an escape pair is never
  split across segments.
* UCS-2 (any character outside GSM-7): 70 UTF-16 code units in one segment,
  67 per segment once split; an emoji is two code units and a surrogate pair
  is never split.

Ids (was ``notification.ids``):

Database ids as clients send them: the one parser queries, mutations and subscriptions use.

Anything outside 1..2**63-1 can name no row; checking here turns it into "not
found" or a field error instead of a database error (SQLite and psycopg both
refuse integers beyond 64 bits). Only ASCII digits count: ``str.isdigit``
accepts "²" and other Unicode digits that ``int`` then refuses.
"""

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from django.core.exceptions import ValidationError

from notification.conf import app_settings

# -------- phone -------------------------------------------------------------------------

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


# -------- text --------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_MESSAGE = "Text must not contain NUL (\\x00) characters."
SURROGATE_MESSAGE = "Text must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)."


def unstorable_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


# -------- segments ----------------------------------------------------------------------

MAX_BODY_CHARACTERS = 1600

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body travels: its encoding, its segment count and its length in units.

    ``characters`` counts encoding units (septets for GSM-7, UTF-16 code units
    for UCS-2), which is what the per-segment limits are measured in.
    """

    encoding: Encoding
    segments: int
    characters: int
    characters_per_segment: int


def is_gsm7(body: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)


def _unit_widths(body: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in body]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in body]


def _pack(widths: list[int], per_segment: int) -> int:
    """Greedy packing that never splits a two-unit character across segments."""
    segments, used = 1, 0
    for width in widths:
        if used + width > per_segment:
            segments += 1
            used = 0
        used += width
    return segments


def segment_fields(body: str) -> dict[str, int | str]:
    """The ``segments`` and ``encoding`` columns of an SMS row with this body.

    Every writer of those columns (save, bulk creation, the admin, the send
    job's recount) takes them from here, so a row never stores a count made
    by other rules than the one the send job's budget uses.
    """
    info = count_segments(body)
    return {"segments": info.segments, "encoding": info.encoding.value}


def count_segments(body: str) -> SegmentInfo:
    encoding = Encoding.GSM7 if is_gsm7(body) else Encoding.UCS2
    single, multi = (
        (GSM7_SINGLE, GSM7_MULTI) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    )
    widths = _unit_widths(body, encoding)
    units = sum(widths)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single)
    if units <= single:
        return SegmentInfo(encoding, 1, units, single)
    return SegmentInfo(encoding, _pack(widths, multi), units, multi)


# -------- ids ---------------------------------------------------------------------------

MAX_DATABASE_ID = 2**63 - 1
_ID_PATTERN = re.compile(r"[0-9]{1,19}")


def parse_database_id(value: object) -> int | None:
    """``value`` as a row id (1..2**63-1, given as an int or ASCII digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, str) and _ID_PATTERN.fullmatch(value):
        parsed = int(value)
    else:
        return None
    return parsed if 1 <= parsed <= MAX_DATABASE_ID else None
