"""Normalized webhook events: what the rest of the code consumes instead of Twilio's form.

Twilio adds form parameters without notice; keeping the raw form on the event
(``raw``) means nothing is lost, while the typed fields are all the logic reads.
"""

from dataclasses import dataclass, field
from datetime import datetime

# The URL name (``notification.urls``) of the status callback: the send job tells
# Twilio its URL and the ASGI fast path serves it, wherever the project includes it.
STATUS_CALLBACK_ROUTE = "notification:twilio-sms-status"
# The query parameter of each message's own status callback URL that names its
# ``SmsNotification`` (``?sms=<id>``): a callback for a message whose sid we never
# learned (the create's answer was lost) still says which row it is about. The
# provider signs the whole URL, query included, so it cannot be forged.
STATUS_CALLBACK_SMS_PARAM = "sms"


@dataclass(frozen=True, slots=True)
class SmsStatusEvent:
    """One status callback: "message ``message_sid`` is now ``status``"."""

    message_sid: str
    status: str
    error_code: int | None
    # Twilio's own message when the callback carries one (it rarely does).
    error_message: str
    account_sid: str
    from_number: str
    to_number: str
    received_at: datetime
    #: Our ``SmsNotification`` id from the callback URL (``STATUS_CALLBACK_SMS_PARAM``),
    #: when the URL names one (callbacks of older sends do not).
    sms_id: int | None = None
    raw: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class InboundSmsEvent:
    """One message a person sent to one of our numbers."""

    message_sid: str
    from_number: str
    to_number: str
    body: str
    received_at: datetime
    raw: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
