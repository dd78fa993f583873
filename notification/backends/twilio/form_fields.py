"""Bounding and cleaning single fields of Twilio's webhook forms, before anything else reads them.

A signed form is Twilio's, but its values still reach PostgreSQL, Redis, logs
and subscribers, so each one is made safe for all of them first: a NUL
character is refused by PostgreSQL's text columns (the write fails, the view
answers 500, Twilio retries and the status change is lost meanwhile), an error
code outside a 32-bit column overflows it, and an unbounded value lands whole
in every log line. The fixes keep the event: the status change is still
applied with whatever was usable, the rest is dropped or shortened.

Twilio documents its message sids as two letters and 32 hexadecimal digits and
its error codes as five-digit numbers
(https://www.twilio.com/docs/api/errors); the bounds below are wider than that,
so a format Twilio extends tomorrow still passes.
"""

import re
import unicodedata

#: ``SmsNotification.twilio_sid``'s column length; a real sid has 34 characters.
MAX_SID_LENGTH = 64
#: Status names ("partially_delivered" is the longest Twilio has).
MAX_STATUS_LENGTH = 32
#: Addresses (E.164, short codes, ``whatsapp:+1…``, ``messenger:…`` channel ids).
MAX_ADDRESS_LENGTH = 128
#: Free text (``ErrorMessage``) kept on the SMS row.
MAX_TEXT_LENGTH = 1_000
#: Largest error code kept; Twilio's are five digits. Fits every integer column.
MAX_ERROR_CODE = 999_999

_SID = re.compile(r"[A-Za-z0-9]+")


def clean_text(raw: str | None, limit: int) -> str:
    """``raw`` trimmed, at most ``limit`` characters, without control characters.

    Control characters (NUL included) become spaces: PostgreSQL refuses NUL in
    text, and line breaks in a value would forge log lines.
    """
    text = (raw or "")[: limit * 2]  # bounded work before the per-character pass
    cleaned = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    return cleaned.strip()[:limit]


def clean_sid(raw: str | None) -> str:
    """A message sid, or ``""`` when the value cannot be one (the caller refuses the form).

    No cleaning here: a sid with a NUL in it is not a sid with the NUL removed.
    """
    text = (raw or "").strip()
    if len(text) > MAX_SID_LENGTH or not _SID.fullmatch(text):
        return ""
    return text


def clean_error_code(raw: str | None) -> int | None:
    """Twilio's ``ErrorCode`` as a number, or ``None`` for no code and for what cannot be one.

    ``0`` and empty mean "no error"; negative numbers, numbers past
    ``MAX_ERROR_CODE`` (``2147483648`` overflows PostgreSQL's integer,
    ``2**63`` SQLite's) and non-numbers are treated as an unknown code rather
    than failing the whole callback.
    """
    text = (raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ERROR_CODE)):
        return None
    code = int(text)
    return code if 0 < code <= MAX_ERROR_CODE else None
