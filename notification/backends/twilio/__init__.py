"""The Twilio backend: everything that knows the ``twilio`` SDK and Twilio's webhooks.

``client`` (building SDK clients from settings, re-based onto the emulator),
``failures`` (what a failed create request means), ``signature`` (the
``X-Twilio-Signature`` check of incoming webhooks) and ``payloads`` (their forms
as normalised events). The rest of the app sees only ``TwilioBackend``.
"""

import time
from typing import Any

from twilio.base.exceptions import TwilioRestException

from notification import instruments
from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    FailureKind,
    OutgoingSms,
    SendFailure,
)
from notification.backends.twilio.client import (
    get_twilio_client,
    missing_twilio_settings,
    sender_kwargs,
)
from notification.backends.twilio.failures import classify_exception


def segments_from(response_value: Any, ours: int) -> int:
    """Twilio's ``num_segments`` (a string), or ours when it says 0 (Messaging Services)."""
    try:
        theirs = int(response_value)
    except (TypeError, ValueError):
        theirs = 0
    return theirs if theirs > 0 else ours


def _outcome(exc: Exception, failure: SendFailure) -> str:
    """The ``sms_twilio_requests_total`` outcome of a failed request."""
    if isinstance(exc, TwilioRestException):  # Twilio answered with an error
        return instruments.REJECTED
    if failure.kind is FailureKind.AMBIGUOUS:
        return instruments.AMBIGUOUS
    return instruments.TRANSPORT_ERROR


class TwilioBackend(BaseSmsBackend):
    """One ``messages.create`` per message through the official SDK (one client per thread)."""

    def missing_settings(self) -> list[str]:
        return missing_twilio_settings()

    def send(self, message: OutgoingSms) -> Accepted | SendFailure:
        try:
            client = get_twilio_client()
        except Exception as exc:  # bad settings: nothing left, so retrying is safe
            return SendFailure(
                FailureKind.RETRYABLE,
                None,
                f"Could not set up the Twilio client: {type(exc).__name__}: {exc}",
            )
        options: dict[str, Any] = {
            **sender_kwargs(),
            "validity_period": message.validity_period,
        }
        if message.status_callback:
            options["status_callback"] = message.status_callback
        started = time.monotonic()
        try:
            created = client.messages.create(to=message.to, body=message.body, **options)
        except Exception as exc:  # one bad message never stops the batch
            failure = classify_exception(exc)
            instruments.twilio_request(
                _outcome(exc, failure), failure.code, time.monotonic() - started
            )
            return failure
        instruments.twilio_request(instruments.ACCEPTED, None, time.monotonic() - started)
        return Accepted(
            sid=created.sid,
            status=str(created.status or "queued"),
            segments=segments_from(created.num_segments, message.segments),
        )
