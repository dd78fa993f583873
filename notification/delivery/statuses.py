"""The order of delivery statuses, and where each one moves its notification.

Twilio's status callbacks arrive late, twice, or out of order (Twilio's
"Outbound Message Status in Status Callbacks" documentation:
https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks).
Each status has a rank and an SMS only ever moves to a strictly higher rank; the
subscriptions drop an event that is behind the last one they sent by the same
ranks. Written once here: two copies would let a subscriber and the database
disagree about which status is newer.
"""

from notification.models import DeliveryStatusChoices as Delivery
from notification.models import NotificationStatusChoices as _N

# queued/accepted/scheduled < sending < sent < delivered/undelivered/failed < read
STATUS_RANK: dict[str, int] = {
    Delivery.NOT_SUBMITTED: 0,
    Delivery.QUEUED: 1,
    Delivery.ACCEPTED: 1,
    Delivery.SCHEDULED: 1,
    Delivery.SENDING: 2,
    Delivery.SENT: 3,
    Delivery.DELIVERED: 4,
    Delivery.UNDELIVERED: 4,
    Delivery.FAILED: 4,
    Delivery.PARTIALLY_DELIVERED: 4,
    Delivery.CANCELED: 4,
    Delivery.READ: 5,
}

# The notification's own status each delivery status leads to, and the
# notification statuses it may leave (a delivered or canceled one never moves).
NOTIFICATION_MOVES: dict[str, tuple[str, frozenset[str]]] = {
    Delivery.SENDING: (_N.SENT, frozenset({_N.PROCESSING, _N.UNKNOWN})),
    Delivery.SENT: (_N.SENT, frozenset({_N.PROCESSING, _N.UNKNOWN})),
    Delivery.DELIVERED: (_N.DELIVERED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.READ: (_N.DELIVERED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.UNDELIVERED: (_N.FAILED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.FAILED: (_N.FAILED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.CANCELED: (_N.CANCELED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
}
SENT_OR_LATER = frozenset(status for status, rank in STATUS_RANK.items() if rank >= 3)
FAILURES = frozenset({Delivery.FAILED, Delivery.UNDELIVERED})
# A failure re-queues only a notification the send job handed over (a canceled
# or already delivered one keeps its status, as with any failure).
REQUEUE_FROM = NOTIFICATION_MOVES[Delivery.FAILED][1]


def is_known(status: str) -> bool:
    """A status a callback may report (``not_submitted`` is ours, never Twilio's)."""
    return status in STATUS_RANK and status != Delivery.NOT_SUBMITTED


def statuses_before(status: str) -> list[str]:
    """Every delivery status an SMS may move to ``status`` from."""
    rank = STATUS_RANK[status]
    return [earlier for earlier, earlier_rank in STATUS_RANK.items() if earlier_rank < rank]


def is_behind(status: str, than: str) -> bool:
    """True when ``status`` ranks below ``than``: an event that arrived out of order."""
    return STATUS_RANK.get(status, 0) < STATUS_RANK.get(than, 0)
