"""The Twilio backend: everything that knows the ``twilio`` SDK and Twilio's webhooks.

``client`` (building SDK clients from settings, re-based onto the emulator),
``failures`` (what a failed create request means), ``signature`` (the
``X-Twilio-Signature`` check of incoming webhooks) and ``payloads`` (their forms
as normalised events). The rest of the app sees only ``TwilioBackend``.
"""

from decimal import Decimal
from typing import Any

from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    FailureKind,
    OutgoingSms,
    SegmentPrice,
    SendFailure,
)
from notification.backends.twilio.client import (
    get_twilio_client,
    missing_twilio_settings,
    sender_kwargs,
)
from notification.backends.twilio.failures import classify_exception
from notification.backends.twilio.pricing import (
    fetch_segment_price,
    message_price,
    sender_number_types,
)
from notification.conf import app_settings


def segments_from(response_value: Any, ours: int) -> int:
    """Twilio's ``num_segments`` (a string), or ours when it says 0 (Messaging Services)."""
    try:
        theirs = int(response_value)
    except (TypeError, ValueError):
        theirs = 0
    return theirs if theirs > 0 else ours


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
        try:
            created = client.messages.create(to=message.to, body=message.body, **options)
        except Exception as exc:  # one bad message never stops the batch
            return classify_exception(exc)
        return Accepted(
            sid=created.sid,
            status=str(created.status or "queued"),
            segments=segments_from(created.num_segments, message.segments),
        )

    def segment_price(self, country: str) -> SegmentPrice | None:
        """Twilio's Pricing API (``backends.twilio.pricing``); raises on a network error."""
        return fetch_segment_price(
            get_twilio_client(),
            country,
            sender_number_types(
                app_settings.TWILIO_FROM_NUMBER, app_settings.TWILIO_MESSAGING_SERVICE_SID
            ),
        )

    def reported_price(self, provider_id: str) -> tuple[Decimal, str] | None:
        """``messages(sid).fetch()``: ``price`` is negative and often empty until the
        message is final (https://www.twilio.com/docs/messaging/api/message-resource)."""
        return message_price(get_twilio_client().messages(provider_id).fetch())
