"""Giving an ``unknown`` message the sid Twilio's own evidence names.

A message is ``unknown`` when its create request may have reached Twilio but
the answer, and so the sid, was lost (a timeout after the request left, a
dropped connection, a worker that stopped mid-request). Twilio still reports on
such a message: each status callback URL names our row (``?sms=<id>``,
``notification.sending.dispatch``), and reconciliation finds it in Twilio's
Messages list. Either way the row learns its sid here, and the notification
leaves ``unknown`` for ``sent`` (Twilio has it); the caller then applies the
status itself with the ordinary forward-only rules (``tracking.status``), so
the order of statuses, the publishes and the signals are the callbacks' own.

Only an ``unknown`` notification may adopt a sid: a row still being sent has
its answer on the way (an early callback is kept, ``tracking.early``), and a
pending one was put back on purpose. The UPDATE's WHERE clause is the guard
(``unknown``, no sid or this same sid, the same recipient), evaluated by the
database on the row it locks, so two callbacks for the same message racing
here adopt it once, and a message adopted is never resent: it is no longer
``unknown``, and only ``unknown`` rows are resent by reconciliation.
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q

from notification.delivery.reports import SmsStatusEvent
from notification.models import Notification, NotificationStatusChoices, SmsNotification

logger = logging.getLogger(__name__)

_N = NotificationStatusChoices


def adopt_sid(sms_id: int, event: SmsStatusEvent, *, source: str) -> int | None:
    """Record ``event``'s sid on the unknown SMS ``sms_id``; its notification id, else ``None``.

    ``source`` says where the evidence came from (a status callback,
    reconciliation) in the notification's status message.
    """
    recipient = Q(to_phone_number=event.to_number) if event.to_number else Q()
    try:
        with transaction.atomic():
            adopted = (
                SmsNotification.objects.filter(
                    recipient, pk=sms_id, notification__status=_N.UNKNOWN
                )
                .filter(Q(twilio_sid__isnull=True) | Q(twilio_sid=event.message_sid))
                .update(
                    twilio_sid=event.message_sid,
                    error_code=None,
                    error_message="",
                    status_updated_datetime=event.received_at,
                )
            )
            if not adopted:
                return None
            notification_id = (
                SmsNotification.objects.filter(pk=sms_id)
                .values_list("notification_id", flat=True)
                .get()
            )
            Notification.objects.filter(pk=notification_id, status=_N.UNKNOWN).update(
                status=_N.SENT,
                status_message=(
                    f"Twilio has this message ({event.message_sid}, {event.status}), "
                    f"found by {source}; it is not resent."
                ),
                sent_datetime=event.received_at,
                updated_datetime=event.received_at,
            )
    except IntegrityError:  # the sid belongs to another row: not this message's evidence
        logger.warning(
            "sid %s is stored on another row: not adopted by SMS %s", event.message_sid, sms_id
        )
        return None
    logger.info(
        "sms_adopt sms=%s sid=%s status=%s source=%s",
        sms_id,
        event.message_sid,
        event.status,
        source,
    )
    return notification_id
