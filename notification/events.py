"""Status-change events for live subscriptions.

Every code path that changes a notification's status (the send job, the status
webhook, cancel, admin actions) calls ``notify_status_changed`` with the ids it
changed. Publishing happens after the transaction commits and never raises: a
failed publish must not undo or fail the status change itself.

(Stub: the "Live delivery status" issue publishes through the channels layer.)
"""

from collections.abc import Iterable


def notify_status_changed(notification_ids: Iterable[int]) -> None:
    """Announce that these notifications' status or delivery status changed."""
    del notification_ids
