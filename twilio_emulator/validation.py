"""Validation of ``POST .../Messages.json`` parameters, in the order Twilio applies it.

Everything here is static (it depends only on the request), including the test
credentials' magic numbers, so it is one pure function that either returns the
cleaned request or raises the ``TwilioApiError`` Twilio would answer with.
Queue capacity, which depends on the emulator's state, is checked by the state.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from notification.values import MAX_BODY_CHARACTERS, count_segments
from twilio_emulator import errors

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
SHORT_CODE = re.compile(r"^\d{5,6}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_VALIDITY_PERIOD = 36_000

# Test credentials' magic numbers (https://www.twilio.com/docs/iam/test-credentials).
INVALID_FROM_NUMBER = "+15005550001"
MAGIC_TO_ERRORS = {
    "+15005550001": lambda to, from_: errors.invalid_to(to),
    "+15005550002": lambda to, from_: errors.unreachable_route(to, from_),
    "+15005550003": lambda to, from_: errors.region_not_enabled(to),
    "+15005550004": lambda to, from_: errors.unsubscribed_recipient(),
    "+15005550009": lambda to, from_: errors.not_mobile(to),
}


@dataclass(frozen=True)
class CreateRequest:
    """A create request that passed validation."""

    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str] = field(default_factory=list)
    status_callback: str | None = None
    validity_period: int = MAX_VALIDITY_PERIOD
    segments: int = 1
    encoding: str = "gsm7"

    @property
    def sender(self) -> str:
        """The key of the per-sender queue this message waits in."""
        return self.messaging_service_sid or self.from_ or ""


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def is_valid_sender(from_: str) -> bool:
    return bool(E164.match(from_) or SHORT_CODE.match(from_) or ALPHANUMERIC_SENDER.match(from_))


def is_valid_callback_url(url: str) -> bool:
    """Absolute http(s) URL whose host has no underscore (Twilio rejects those)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and bool(host) and "_" not in host


def validate_create(form: dict[str, list[str]]) -> CreateRequest:
    to = (_first(form, "To") or "").strip()
    from_ = (_first(form, "From") or "").strip() or None
    service_sid = (_first(form, "MessagingServiceSid") or "").strip() or None
    body = _first(form, "Body") or ""
    media_urls = [url for url in form.get("MediaUrl", []) if url]
    status_callback = (_first(form, "StatusCallback") or "").strip() or None
    validity_raw = _first(form, "ValidityPeriod")

    if not to:
        raise errors.to_required()
    if not E164.match(to):
        raise errors.invalid_to(to)
    if not from_ and not service_sid:
        raise errors.from_required()
    if service_sid and not MESSAGING_SERVICE_SID.match(service_sid):
        raise errors.invalid_messaging_service(service_sid)
    if from_ and (from_ == INVALID_FROM_NUMBER or not is_valid_sender(from_)):
        raise errors.invalid_from(from_)
    if from_ and from_ == to:
        raise errors.same_to_and_from()
    if not body and not media_urls:
        raise errors.body_required()
    if len(body) > MAX_BODY_CHARACTERS:
        raise errors.body_too_long()
    if status_callback and not is_valid_callback_url(status_callback):
        raise errors.invalid_status_callback(status_callback)
    validity_period = MAX_VALIDITY_PERIOD
    if validity_raw is not None:
        try:
            validity_period = int(validity_raw)
        except ValueError:
            raise errors.invalid_validity_period() from None
        if not 1 <= validity_period <= MAX_VALIDITY_PERIOD:
            raise errors.invalid_validity_period()
    magic = MAGIC_TO_ERRORS.get(to)
    if magic is not None:
        raise magic(to, from_ or service_sid or "")

    info = count_segments(body)
    return CreateRequest(
        to=to,
        from_=from_,
        messaging_service_sid=service_sid,
        body=body,
        media_urls=media_urls,
        status_callback=status_callback,
        validity_period=validity_period,
        segments=max(1, info.segments),
        encoding=str(info.encoding),
    )
