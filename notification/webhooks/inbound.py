"""Inbound SMS keywords: STOP, START and HELP (the words are in ``keywords``).

Twilio itself blocks sends after STOP (error 21610), but STOP does not cancel
what we already queued, so the opt-out is recorded on our side and the send job
skips the number.

Opt-outs are recorded for phone numbers only: we send to E.164 numbers and
nothing else, so a STOP from a short code or a channel address
(``messenger:…``, ``whatsapp:…`` that is not a number) has nothing to stop.
"""

import enum
import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from twilio.twiml.messaging_response import MessagingResponse

from notification.conf import app_settings
from notification.delivery.reports import InboundSmsEvent
from notification.models import OptOutSourceChoices, SmsOptOut
from notification.phone import normalize_phone_number
from notification.signals import send_received
from notification.webhooks.keywords import HELP_KEYWORDS, START_KEYWORDS, STOP_KEYWORDS, keyword_of

logger = logging.getLogger(__name__)


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    NONE = "none"


def classify(body: str) -> Keyword:
    word = keyword_of(body)
    if word in STOP_KEYWORDS:
        return Keyword.STOP
    if word in START_KEYWORDS:
        return Keyword.START
    if word in HELP_KEYWORDS:
        return Keyword.HELP
    return Keyword.NONE


def handle_inbound(event: InboundSmsEvent) -> str:
    """Act on an inbound message and return the TwiML to answer Twilio with."""
    keyword = classify(event.body)
    reply = MessagingResponse()
    phone_number = _e164(event.from_number)
    if keyword in (Keyword.STOP, Keyword.START) and phone_number is None:
        logger.info(
            "%s from %r, not a phone number: nothing to record", keyword.name, event.from_number
        )
    elif keyword is Keyword.STOP:
        _, created = SmsOptOut.objects.get_or_create(
            phone_number=phone_number, defaults={"source": OptOutSourceChoices.INBOUND_STOP}
        )
        logger.info("Opt-out from %s (%s)", phone_number, "new" if created else "already recorded")
    elif keyword is Keyword.START:
        deleted, _ = SmsOptOut.objects.filter(phone_number=phone_number).delete()
        logger.info("Opt-in from %s (%d opt-out removed)", phone_number, deleted)
    elif keyword is Keyword.HELP:
        reply.message(app_settings.SMS_HELP_TEXT)
        logger.info("HELP from %r answered", event.from_number)
    else:
        logger.info(
            "Inbound message %s from %r (%d characters), no keyword",
            event.message_sid,
            event.from_number,
            len(event.body),
        )
    transaction.on_commit(lambda: send_received(event, keyword.value), robust=True)
    return str(reply)


def _e164(raw: str) -> str | None:
    """Twilio sends E.164 already; normalise anyway so opt-outs match stored numbers.

    ``None`` for what is not a number we could ever send to (short codes,
    channel addresses such as ``whatsapp:+1…``, another channel than SMS): no
    opt-out row can match those, and they need not fit the phone number column.
    """
    if ":" in raw:
        return None
    try:
        return normalize_phone_number(raw)
    except ValidationError:
        return None
