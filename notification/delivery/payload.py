"""The status event: what subscribers (and host projects' signal receivers) are told.

Built in one place from one row shape (``SNAPSHOT_FIELDS``, the columns of a
``Notification.objects.values()`` query), whether the row was read after the
send job's write or returned by the status webhook's ``UPDATE ... RETURNING``:
two builders would let a subscriber see a different event for the same change
depending on which process made it.

Keys are plain snake_case: the GraphQL layer turns an event into its own types.
"""

from datetime import datetime
from typing import Any

STATUS_MESSAGE_TYPE = "sms.status"

SNAPSHOT_FIELDS = (
    "id",
    "user_id",
    "created_by_id",
    "status",
    "updated_datetime",
    "sms__delivery_status",
    "sms__error_code",
    "sms__error_message",
    "sms__status_updated_datetime",
    "sms__twilio_sid",
)


def snapshot_rows(notification_ids: list[int]) -> list[dict[str, Any]]:
    """The rows events are built from, for these notifications (one query)."""
    from notification.models import Notification

    return list(Notification.objects.filter(pk__in=notification_ids).values(*SNAPSHOT_FIELDS))


def status_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The event for one notification, from a row with the ``SNAPSHOT_FIELDS`` keys."""
    moments = [m for m in (row["updated_datetime"], row["sms__status_updated_datetime"]) if m]
    at: datetime | None = max(moments) if moments else None
    return {
        "type": STATUS_MESSAGE_TYPE,
        "notification_id": str(row["id"]),
        "user_id": row["user_id"],
        "created_by_id": row["created_by_id"],
        "status": row["status"],
        "delivery_status": row["sms__delivery_status"] or "",
        "error_code": row["sms__error_code"],
        "error_message": row["sms__error_message"] or "",
        "at": at.isoformat() if at else None,
    }


def status_payloads(notification_ids: list[int]) -> list[dict[str, Any]]:
    """The current event of each notification (one query)."""
    return [status_payload(row) for row in snapshot_rows(notification_ids)]
