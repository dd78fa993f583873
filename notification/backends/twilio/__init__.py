"""The Twilio backend: everything that knows the ``twilio`` SDK and Twilio's webhooks.

``client`` (building SDK clients from settings, re-based onto the emulator),
``failures`` (what a failed create request means), ``signature`` (the
``X-Twilio-Signature`` check of incoming webhooks) and ``payloads`` (their forms
as normalised events). The rest of the app sees only ``TwilioBackend``.
"""

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from twilio.base.exceptions import TwilioRestException

from notification import instruments
from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    FailureKind,
    LookupUnavailable,
    OutgoingSms,
    ProviderMessage,
    SegmentPrice,
    SendFailure,
)
from notification.backends.twilio.client import (
    get_twilio_client,
    missing_twilio_settings,
    sender_kwargs,
)
from notification.backends.twilio.failures import classify_exception
from notification.backends.twilio.overrides import with_connection_overrides
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


def _provider_message(record: Any) -> ProviderMessage:
    """An SDK ``MessageInstance`` as the backend-neutral record reconciliation reads."""
    return ProviderMessage(
        sid=str(record.sid),
        status=str(record.status or ""),
        to=str(record.to or ""),
        from_number=str(record.from_ or ""),
        messaging_service_sid=str(record.messaging_service_sid or ""),
        body=str(record.body or ""),
        date_created=record.date_created,
        date_sent=record.date_sent,
        error_code=record.error_code if isinstance(record.error_code, int) else None,
        error_message=str(record.error_message or ""),
    )


def _unavailable(exc: Exception) -> LookupUnavailable:
    return LookupUnavailable(f"Twilio did not answer the lookup: {type(exc).__name__}: {exc}")


def _outcome(exc: Exception, failure: SendFailure) -> str:
    """The ``sms_twilio_requests_total`` outcome of a failed request."""
    if isinstance(exc, TwilioRestException):  # Twilio answered with an error
        return instruments.REJECTED
    if failure.kind is FailureKind.AMBIGUOUS:
        return instruments.AMBIGUOUS
    return instruments.TRANSPORT_ERROR


class TwilioBackend(BaseSmsBackend):
    """One ``messages.create`` per message through the official SDK (one client per thread).

    Lookups use the Message resource's fetch and its filtered list
    (https://www.twilio.com/docs/messaging/api/message-resource#fetch-a-message-resource,
    #read-multiple-message-resources): filters ``To``, ``From`` and
    ``DateSent>`` ("on or after", at Twilio's own granularity, so the answer
    is filtered again here), newest first, every page followed by the SDK.
    """

    supports_lookup = True

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
            options["status_callback"] = with_connection_overrides(message.status_callback)
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

    def fetch(self, sid: str) -> ProviderMessage | None:
        try:
            record = get_twilio_client().messages(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise _unavailable(exc) from exc
        except Exception as exc:  # unreachable, timed out, unreadable: conclude nothing
            raise _unavailable(exc) from exc
        return _provider_message(record)

    def find(self, *, to: str, sender: str, sent_after: datetime) -> list[ProviderMessage]:
        # A Messaging Service is not a From: Twilio picks a number from its pool,
        # so the list is filtered by the service on our side.
        by_service = sender.startswith("MG")
        filters: dict[str, Any] = {"to": to, "date_sent_after": sent_after}
        if not by_service:
            filters["from_"] = sender
        try:
            records = get_twilio_client().messages.list(**filters)
        except Exception as exc:  # a partial listing proves nothing: conclude nothing
            raise _unavailable(exc) from exc
        found = [_provider_message(record) for record in records]
        return [
            message
            for message in found
            if (not by_service or message.messaging_service_sid == sender)
            and (message.date_sent is None or message.date_sent >= sent_after)
        ]

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
