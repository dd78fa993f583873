"""Turn Twilio's webhook forms into normalized events.

Raises ``MalformedWebhook`` when a signed form lacks what every such webhook
carries; the view answers 400 and changes nothing. Every typed field is
bounded and cleaned (``form_fields``) before it reaches the database.
"""

from collections.abc import Mapping

from django.utils import timezone

from notification.backends.twilio.form_fields import (
    MAX_ADDRESS_LENGTH,
    MAX_STATUS_LENGTH,
    MAX_TEXT_LENGTH,
    clean_error_code,
    clean_sid,
    clean_text,
)
from notification.delivery.reports import InboundSmsEvent, SmsStatusEvent
from notification.exceptions import SmsNotificationError


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
