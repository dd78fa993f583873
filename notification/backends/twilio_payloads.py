"""What Twilio sends and answers, read safely: form fields, payloads, failures, prices.

Bounding and cleaning single fields of Twilio's webhook forms, before anything else reads them.

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

Payloads (was ``notification.backends.twilio.payloads``):

Turn Twilio's webhook forms into normalized events.

Raises ``MalformedWebhook`` when a signed form lacks what every such webhook
carries; the view answers 400 and changes nothing. Every typed field is
bounded and cleaned (``form_fields``) before it reaches the database.

Failures (was ``notification.backends.twilio.failures``):

What a failed create request means: permanent, retryable, or ambiguous.

The distinction is about money and trust, not about tidiness:

* **permanent**: Twilio refused the message and will refuse it again; fail it.
* **retryable**: the message certainly did not reach Twilio's queue (an HTTP
  error answer, or no connection at all), so sending it again cannot duplicate.
* **ambiguous**: the request may have reached Twilio (read timeout, connection
  dropped after the request was written, an unreadable success answer). Sending
  it again could deliver it twice, so it becomes ``unknown`` and waits for staff.

Twilio warns against relying on exact codes alone, so unknown codes go to a
default branch: **retryable with the attempt cap**. An HTTP error answer proves
the message was not queued, so retrying cannot duplicate it, and an account- or
sender-level problem (bad credentials, a misconfigured ``From``) would
otherwise fail the whole backlog at once instead of giving operators the
backoff window to fix it. The cap still ends hopeless cases with the last error.

Pricing (was ``notification.backends.twilio.pricing``):

Twilio's price of one outbound SMS segment, from the Pricing API through the SDK.

``client.pricing.v1.messaging.countries(iso).fetch()`` returns, per carrier
(MCC/MNC), a price for each sender number type (``local``, ``mobile``,
``national``, ``toll free``, ``shortcode``), and the currency in ``price_unit``
(https://www.twilio.com/docs/sms/api/pricing). We take the **highest** current
price among the carriers for our sender's number type (among all types when the
sender is a Messaging Service, whose pool may mix types): the carrier a message
takes is unknown before it is sent, and a spend limit must not be passed because
the estimate picked the cheapest one.
"""

import re
import time
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import phonenumbers
import requests
from django.utils import timezone
from twilio.base.exceptions import TwilioRestException
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from notification import instruments
from notification.backends.base import Accepted, FailureKind, SegmentPrice, SendFailure
from notification.delivery import PERMANENT_CODES, InboundSmsEvent, SmsStatusEvent
from notification.exceptions import SmsNotificationError

# -------- form_fields -------------------------------------------------------------------

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


# -------- payloads ----------------------------------------------------------------------


class MalformedWebhook(SmsNotificationError, ValueError):
    """A correctly signed form without the fields the event needs."""


def _required(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = (form.get(name) or "").strip()
        if value:
            return value
    raise MalformedWebhook(f"missing form parameter {names[0]}")


def _flat(form: Mapping[str, str]) -> dict[str, str]:
    return {key: form.get(key) or "" for key in form}


def status_event_from_form(form: Mapping[str, str], sms_id: int | None = None) -> SmsStatusEvent:
    """Build a ``SmsStatusEvent`` from a status callback form.

    ``MessageStatus`` is the current name; ``SmsStatus`` is the older one Twilio
    still sends alongside it. ``sms_id`` is our row id from the (signed) callback URL.
    """
    message_sid = clean_sid(_required(form, "MessageSid", "SmsSid"))
    if not message_sid:
        raise MalformedWebhook("MessageSid is not a message sid")
    return SmsStatusEvent(
        message_sid=message_sid,
        status=clean_text(_required(form, "MessageStatus", "SmsStatus"), MAX_STATUS_LENGTH).lower(),
        error_code=clean_error_code(form.get("ErrorCode")),
        error_message=clean_text(form.get("ErrorMessage"), MAX_TEXT_LENGTH),
        account_sid=clean_text(form.get("AccountSid"), MAX_ADDRESS_LENGTH),
        from_number=clean_text(form.get("From"), MAX_ADDRESS_LENGTH),
        to_number=clean_text(form.get("To"), MAX_ADDRESS_LENGTH),
        received_at=timezone.now(),
        sms_id=sms_id,
        raw=_flat(form),
    )


def inbound_event_from_form(form: Mapping[str, str]) -> InboundSmsEvent:
    """Build an ``InboundSmsEvent`` from an incoming-message webhook form."""
    return InboundSmsEvent(
        message_sid=clean_sid(form.get("MessageSid") or form.get("SmsSid")),
        from_number=clean_text(_required(form, "From"), MAX_ADDRESS_LENGTH),
        to_number=clean_text(form.get("To"), MAX_ADDRESS_LENGTH),
        body=form.get("Body") or "",
        received_at=timezone.now(),
        raw=_flat(form),
    )


# -------- failures ----------------------------------------------------------------------


def classify_twilio_error(exc: TwilioRestException) -> SendFailure:
    """Classify an error *answer* from Twilio (the request was answered, not queued)."""
    code = exc.code if isinstance(exc.code, int) else None
    message = str(exc.msg or f"HTTP {exc.status}")
    if code in PERMANENT_CODES:
        return SendFailure(FailureKind.PERMANENT, code, message)
    # Everything else is retried: known transient codes, HTTP 429 and 5xx
    # and, by the default branch (see the module docstring), unknown codes too.
    return SendFailure(FailureKind.RETRYABLE, code, message)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (nothing was sent).

    ``requests`` wraps urllib3's ``MaxRetryError`` whose ``reason`` is a
    ``NewConnectionError`` (refused, DNS) or a ``ConnectTimeoutError``. Errors
    raised after connecting (``ProtocolError``: the peer closed the connection
    mid-exchange) arrive unwrapped and are ambiguous.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        return isinstance(reason.reason, NewConnectionError | ConnectTimeoutError)
    return False


def _never_sent_aiohttp(exc: BaseException) -> bool:
    """aiohttp (the async path): no connection was made (refused, DNS, TLS, proxy, or
    connect timeout), so the request never left. Anything later (a reset, a
    disconnect, a read timeout, an unreadable answer) may follow the request's arrival."""
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


def classify_exception(exc: BaseException) -> SendFailure:
    """Classify anything a create call raised (``requests`` or aiohttp underneath)."""
    if isinstance(exc, TwilioRestException):
        return classify_twilio_error(exc)
    if (isinstance(exc, requests.ConnectionError) and _never_connected(exc)) or (
        _never_sent_aiohttp(exc)
    ):
        return SendFailure(FailureKind.RETRYABLE, None, f"Could not connect to Twilio: {exc}")
    if isinstance(exc, requests.Timeout | TimeoutError):
        return SendFailure(
            FailureKind.AMBIGUOUS, None, f"Timed out waiting for Twilio's answer: {exc}"
        )
    if isinstance(exc, requests.ConnectionError | aiohttp.ClientConnectionError):
        return SendFailure(
            FailureKind.AMBIGUOUS, None, f"Connection to Twilio lost after sending: {exc}"
        )
    # Anything else (an unreadable answer, a bug after the request left): the
    # message may be at Twilio, so at-most-once wins.
    return SendFailure(
        FailureKind.AMBIGUOUS, None, f"Unexpected error while sending: {type(exc).__name__}: {exc}"
    )


def not_set_up(exc: Exception) -> SendFailure:
    """The client could not be built (bad settings): nothing left, so retrying is safe."""
    return SendFailure(
        FailureKind.RETRYABLE,
        None,
        f"Could not set up the Twilio client: {type(exc).__name__}: {exc}",
    )


def request_outcome(exc: Exception, failure: SendFailure) -> str:
    """The ``sms_twilio_requests_total`` outcome of a failed request."""
    if isinstance(exc, TwilioRestException):  # Twilio answered with an error
        return instruments.REJECTED
    if failure.kind is FailureKind.AMBIGUOUS:
        return instruments.AMBIGUOUS
    return instruments.TRANSPORT_ERROR


def failed(exc: Exception, started: float) -> SendFailure:
    """``exc`` classified and counted (``started``: ``time.monotonic()`` before the request)."""
    failure = classify_exception(exc)
    instruments.twilio_request(
        request_outcome(exc, failure), failure.code, time.monotonic() - started
    )
    return failure


def segments_from(response_value: Any, ours: int) -> int:
    """Twilio's ``num_segments`` (a string), or ours when it says 0 (Messaging Services)."""
    try:
        theirs = int(response_value)
    except (TypeError, ValueError):
        theirs = 0
    return theirs if theirs > 0 else ours


def accepted(created: Any, our_segments: int, started: float) -> Accepted:
    """The SDK's created ``MessageInstance`` as an ``Accepted``, counted."""
    instruments.twilio_request(instruments.ACCEPTED, None, time.monotonic() - started)
    return Accepted(
        sid=created.sid,
        status=str(created.status or "queued"),
        segments=segments_from(created.num_segments, our_segments),
    )


# -------- pricing -----------------------------------------------------------------------

#: Twilio's number types that a long code (a normal phone number) is billed as.
LONG_CODE_TYPES = ("local", "mobile", "national")


def sender_number_types(from_number: str, messaging_service_sid: str) -> tuple[str, ...]:
    """Which of Twilio's ``number_type`` values our sender's messages are billed as
    (empty: any of them, for a Messaging Service)."""
    if messaging_service_sid or not from_number:
        return ()
    if not from_number.startswith("+"):
        return ("shortcode",)
    try:
        number = phonenumbers.parse(from_number, None)
    except phonenumbers.NumberParseException:
        return ()
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.TOLL_FREE:
        return ("toll free",)
    return LONG_CODE_TYPES


def _decimal(raw: Any) -> Decimal | None:
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return abs(value) if value.is_finite() else None


def highest_price(
    outbound_sms_prices: list[dict[str, Any]] | None, number_types: tuple[str, ...]
) -> Decimal | None:
    """The highest ``current_price`` (else ``base_price``) for ``number_types``
    (all types when empty, or when the country lists none of them)."""
    by_type: list[tuple[str, Decimal]] = []
    for carrier in outbound_sms_prices or []:
        for price in carrier.get("prices") or []:
            value = _decimal(price.get("current_price") or price.get("base_price"))
            if value is not None:
                by_type.append((str(price.get("number_type") or "").lower(), value))
    matching = [value for kind, value in by_type if kind in number_types] if number_types else []
    pool = matching or [value for _, value in by_type]
    return max(pool) if pool else None


def fetch_segment_price(client: Any, country: str, number_types: tuple[str, ...]):
    """One Pricing API call: the price for ``country``, or ``None`` when it lists none."""
    record = client.pricing.v1.messaging.countries(country).fetch()
    amount = highest_price(record.outbound_sms_prices, number_types)
    if amount is None:
        return None
    return SegmentPrice(amount=amount, unit=str(record.price_unit or "USD").upper())


def message_price(message: Any) -> tuple[Decimal, str] | None:
    """A fetched Message's billed price, positive, with its unit (``None`` while empty)."""
    amount = _decimal(message.price) if message.price not in (None, "") else None
    if amount is None:
        return None
    return amount, str(message.price_unit or "USD").upper()
