"""Turn Twilio's webhook forms into normalized events.

Raises ``MalformedWebhook`` when a signed form lacks what every such webhook
carries; the view answers 400 and changes nothing.
"""

from collections.abc import Mapping

from django.utils import timezone

from notification.delivery.reports import InboundSmsEvent, SmsStatusEvent


class MalformedWebhook(ValueError):
    """A correctly signed form without the fields the event needs."""


def _required(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = (form.get(name) or "").strip()
        if value:
            return value
    raise MalformedWebhook(f"missing form parameter {names[0]}")


def _error_code(raw: str) -> int | None:
    raw = raw.strip()
    if not raw or raw == "0":
        return None
    try:
        return int(raw)
    except ValueError:
        # Twilio documents numeric codes only; keep the event rather than lose it.
        return None


def _flat(form: Mapping[str, str]) -> dict[str, str]:
    return {key: form.get(key) or "" for key in form}


def status_event_from_form(form: Mapping[str, str]) -> SmsStatusEvent:
    """Build a ``SmsStatusEvent`` from a status callback form.

    ``MessageStatus`` is the current name; ``SmsStatus`` is the older one Twilio
    still sends alongside it.
    """
    return SmsStatusEvent(
        message_sid=_required(form, "MessageSid", "SmsSid"),
        status=_required(form, "MessageStatus", "SmsStatus").lower(),
        error_code=_error_code(form.get("ErrorCode") or ""),
        error_message=(form.get("ErrorMessage") or "").strip(),
        account_sid=(form.get("AccountSid") or "").strip(),
        from_number=(form.get("From") or "").strip(),
        to_number=(form.get("To") or "").strip(),
        received_at=timezone.now(),
        raw=_flat(form),
    )


def inbound_event_from_form(form: Mapping[str, str]) -> InboundSmsEvent:
    """Build an ``InboundSmsEvent`` from an incoming-message webhook form."""
    return InboundSmsEvent(
        message_sid=(form.get("MessageSid") or form.get("SmsSid") or "").strip(),
        from_number=_required(form, "From"),
        to_number=(form.get("To") or "").strip(),
        body=form.get("Body") or "",
        received_at=timezone.now(),
        raw=_flat(form),
    )
