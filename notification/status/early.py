"""Callbacks for sids that are not (or no longer) stored: early ones and retired ones.

The send job stores the sids of a batch after its create requests return, so
Twilio's "sent" (even "delivered") can reach the webhook first. Dropping those
would leave the message at "queued" for ever. They are kept in Redis (shared by
the web and worker processes) for ``KEEP_SECONDS`` and applied as soon as the
sid is stored: ``notification.status.events`` calls ``settle_early_callbacks`` after
each status change is committed, and the webhook re-checks after keeping one.

The opposite case lives here too: a sid *retired* after Twilio reported a
retryable failure (``status`` re-queues the message and clears its sid, so the
next attempt can store its own). Twilio may still send late callbacks for the
old sid; ``is_retired`` lets the webhook answer them as stale instead of keeping
them as early ones (they would never apply anyway: that sid is never stored
again). Retired sids are remembered for the validity period, the longest Twilio
keeps a message alive.

Redis trouble here is logged and swallowed: it can cost a late status (or a
retired sid's late callback logged as unknown), never the webhook's answer or
anyone's transaction.

Adopt (was ``notification.tracking.adopt``):

Giving an ``unknown`` message the sid Twilio's own evidence names.

A message is ``unknown`` when its create request may have reached Twilio but
the answer, and so the sid, was lost (a timeout after the request left, a
dropped connection, a worker that stopped mid-request). Twilio still reports on
such a message: each status callback URL names our row (``?sms=<id>``,
``notification.send.dispatch``), and reconciliation finds it in Twilio's
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

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime

import redis
from django.db import IntegrityError, transaction
from django.db.models import Q

from notification.conf import app_settings
from notification.connections import get_redis
from notification.delivery import SmsStatusEvent
from notification.models import Notification, NotificationStatusChoices, SmsNotification

# -------- adopt -------------------------------------------------------------------------

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


# -------- early -------------------------------------------------------------------------

KEY_PREFIX = "sms:early-status:"
#: Per SMS id, the sids of kept callbacks whose URL named that row (``?sms=<id>``):
#: a create whose answer is lost becomes ``unknown`` without a sid, and its
#: callbacks, which raced the lost answer, are found again through this index.
BY_SMS_PREFIX = "sms:early-by-sms:"
KEEP_SECONDS = 3600
RETIRED_PREFIX = "sms:retired-sid:"


def keep(event: SmsStatusEvent) -> None:
    data = asdict(event)
    data["received_at"] = event.received_at.isoformat()
    try:
        pipe = get_redis().pipeline()
        pipe.rpush(KEY_PREFIX + event.message_sid, json.dumps(data))
        pipe.expire(KEY_PREFIX + event.message_sid, KEEP_SECONDS)
        if event.sms_id is not None:
            pipe.sadd(BY_SMS_PREFIX + str(event.sms_id), event.message_sid)
            pipe.expire(BY_SMS_PREFIX + str(event.sms_id), KEEP_SECONDS)
        pipe.execute()
    except redis.RedisError:
        logger.exception("Could not keep early status callback for %s", event.message_sid)


def take(message_sids: Iterable[str]) -> list[SmsStatusEvent]:
    """Remove and return the kept events of these sids (one round trip)."""
    sids = [sid for sid in message_sids if sid]
    if not sids:
        return []
    try:
        pipe = get_redis().pipeline(transaction=True)
        for sid in sids:
            pipe.lrange(KEY_PREFIX + sid, 0, -1)
            pipe.delete(KEY_PREFIX + sid)
        replies = pipe.execute()
    except redis.RedisError:
        logger.exception("Could not read early status callbacks")
        return []
    events = []
    for stored in replies[0::2]:
        for item in stored:
            data = json.loads(item)
            data["received_at"] = datetime.fromisoformat(data["received_at"])
            events.append(SmsStatusEvent(**data))
    return events


def sids_for(sms_ids: Iterable[int]) -> dict[int, list[str]]:
    """Per SMS id, the sids of callbacks kept for it (one round trip; usually none)."""
    ids = list(sms_ids)
    if not ids:
        return {}
    try:
        pipe = get_redis().pipeline(transaction=False)
        for sms_id in ids:
            pipe.smembers(BY_SMS_PREFIX + str(sms_id))
        replies = pipe.execute()
    except redis.RedisError:
        logger.exception("Could not look for early status callbacks by SMS id")
        return {}
    return {
        sms_id: sorted(sid.decode() if isinstance(sid, bytes) else sid for sid in sids)
        for sms_id, sids in zip(ids, replies, strict=True)
        if sids
    }


def waiting(message_sids: Iterable[str]) -> list[str]:
    """Which of these sids have kept events: usually none, answered by one ``EXISTS`` of
    all the keys (a pipeline of one ``EXISTS`` per sid cost a batch's write about a
    millisecond of CPU); only when some exist, which ones (a second round trip)."""
    sids = [sid for sid in message_sids if sid]
    if not sids:
        return []
    try:
        if not get_redis().exists(*(KEY_PREFIX + sid for sid in sids)):
            return []
        pipe = get_redis().pipeline(transaction=False)
        for sid in sids:
            pipe.exists(KEY_PREFIX + sid)
        return [sid for sid, found in zip(sids, pipe.execute(), strict=True) if found]
    except redis.RedisError:
        logger.exception("Could not look for early status callbacks")
        return []


def retire(message_sid: str, notification_id: int) -> None:
    """Remember that ``message_sid`` was a failed attempt of ``notification_id``."""
    keep_for = max(KEEP_SECONDS, app_settings.TWILIO_SMS_VALIDITY_PERIOD + KEEP_SECONDS)
    try:
        get_redis().set(RETIRED_PREFIX + message_sid, notification_id, ex=keep_for)
    except redis.RedisError:
        logger.exception("Could not remember retired sid %s", message_sid)


def is_retired(message_sid: str) -> bool:
    """True when ``message_sid`` belongs to an attempt that was given up and re-queued."""
    try:
        return bool(get_redis().exists(RETIRED_PREFIX + message_sid))
    except redis.RedisError:
        logger.exception("Could not look up retired sid %s", message_sid)
        return False
