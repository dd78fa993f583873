"""Status-change events for live subscriptions.

Every code path that changes a notification's status (the send job, the status
webhook, cancel, admin actions) calls ``notify_status_changed`` with the ids it
changed. Publishing happens after the transaction commits (subscribers read
committed state, and a rolled-back change is never announced) and never raises:
a failed publish must not undo or fail the status change itself.

Messages go through the channels layer (Redis), so a publish from an RQ worker
or the admin reaches the websocket consumers in the uvicorn process. Each
changed notification is sent to two groups: its own (``smsStatus``) and its
recipient's (``myNotifications``).
"""

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

STATUS_MESSAGE_TYPE = "sms.status"
# Bounded so a batch of hundreds of changes does not open hundreds of connections.
_PUBLISH_CONCURRENCY = 16


def notification_group(notification_id: int | str) -> str:
    return f"sms-notification-{notification_id}"


def user_group(user_id: int | str) -> str:
    return f"sms-user-{user_id}"


def notify_status_changed(notification_ids: Iterable[int]) -> None:
    """Announce, once the current transaction commits, that these notifications changed."""
    ids = sorted({int(notification_id) for notification_id in notification_ids})
    if ids:
        transaction.on_commit(lambda: publish_status_changes(ids), robust=True)


def status_payloads(notification_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The current status of each notification, as subscribers receive it (one query)."""
    return [status_payload(row) for row in _status_rows(notification_ids)]


def _status_rows(notification_ids: Iterable[int]) -> list[dict[str, Any]]:
    from notification.models import Notification

    rows = Notification.objects.filter(pk__in=list(notification_ids)).values(
        "id",
        "user_id",
        "status",
        "updated_datetime",
        "sms__delivery_status",
        "sms__error_code",
        "sms__error_message",
        "sms__status_updated_datetime",
        "sms__twilio_sid",
    )
    return list(rows)


def status_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The message subscribers receive, from a row shaped like ``_status_rows``' rows."""
    moments = [m for m in (row["updated_datetime"], row["sms__status_updated_datetime"]) if m]
    at: datetime | None = max(moments) if moments else None
    return {
        "type": STATUS_MESSAGE_TYPE,
        "notificationId": str(row["id"]),
        "userId": row["user_id"],
        "status": row["status"],
        "deliveryStatus": row["sms__delivery_status"] or "",
        "errorCode": row["sms__error_code"],
        "errorMessage": row["sms__error_message"] or "",
        "at": at.isoformat() if at else None,
    }


def publish_status_changes(notification_ids: Iterable[int]) -> None:
    """Load the notifications in one query and send one message per notification and group.

    Called from synchronous code (views, RQ jobs, admin). Logs and swallows every
    failure: the status change has already been committed.
    """
    try:
        rows = _status_rows(notification_ids)
        settled = _settle_early_callbacks(rows)
        payloads = [status_payload(row) for row in rows if row["id"] not in settled]
        layer = get_channel_layer()
        if layer is None or not payloads:
            return
        async_to_sync(_send_all)(layer, payloads)
    except Exception:
        logger.exception("Could not publish status changes for notifications %s", notification_ids)


def _settle_early_callbacks(rows: list[dict[str, Any]]) -> set[int]:
    """Apply status callbacks that came before these sids were stored (usually none).

    Every path that stores a sid announces it here, so this is where a callback
    that raced the send job's write catches up. Returns the notifications it
    changed: those were published with their newer status already.
    """
    from notification.webhooks import early
    from notification.webhooks.status import apply_early_events

    waiting = early.waiting(row["sms__twilio_sid"] for row in rows)
    return apply_early_events(waiting) if waiting else set()


async def publish_payloads(payloads: list[dict[str, Any]]) -> None:
    """Async publish of already loaded payloads (the status webhook); never raises."""
    try:
        layer = get_channel_layer()
        if layer is not None and payloads:
            await _send_all(layer, payloads)
    except Exception:
        logger.exception("Could not publish status changes %s", payloads)


async def _send_all(layer: Any, payloads: list[dict[str, Any]]) -> None:
    semaphore = asyncio.Semaphore(_PUBLISH_CONCURRENCY)

    async def send(group: str, payload: dict[str, Any]) -> None:
        async with semaphore:
            await layer.group_send(group, payload)

    sends = []
    for payload in payloads:
        sends.append(send(notification_group(payload["notificationId"]), payload))
        if payload["userId"] is not None:
            sends.append(send(user_group(payload["userId"]), payload))
    results = await asyncio.gather(*sends, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        logger.error(
            "%d of %d status messages were not published: %r",
            len(failures),
            len(results),
            failures[0],
        )
