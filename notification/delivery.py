"""The delivery rules, each in one place: the send job and the status webhook both call them.

``statuses`` (the order of delivery statuses and where each moves a
notification), ``retry`` (backoff, the attempt cap and the messages staff
read), ``error_codes`` (Twilio's error catalogue), ``payload`` (the status
event subscribers and host projects receive), ``optouts`` and ``reports``
(normalised status callbacks and inbound messages). Nothing here touches HTTP,
Redis or a backend: if a rule were restated elsewhere, the two copies would
drift and a callback would treat a message differently from the send job.

Statuses (was ``notification.delivery.statuses``):

The order of delivery statuses, and where each one moves its notification.

Twilio's status callbacks arrive late, twice, or out of order (Twilio's
"Outbound Message Status in Status Callbacks" documentation:
https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks).
Each status has a rank and an SMS only ever moves to a strictly higher rank; the
subscriptions drop an event that is behind the last one they sent by the same
ranks. Written once here: two copies would let a subscriber and the database
disagree about which status is newer.

Retry (was ``notification.delivery.retry``):

The retry policy: which failures get another attempt, when, and what staff read.

The send job (a create request that failed) and the status webhook (a failure
Twilio reported later) both follow it, so a message is retried the same way
whichever of the two saw the failure, and the attempt cap counts every attempt
once. Restated in two places, the cap or the wording drifts apart.

Delay after attempt *n* is ``base × 2^(n-1)``, capped, then scaled by a random
factor in [0.5, 1]: "equal jitter", so a burst of 429s does not come back as one
synchronised burst, yet every retry still waits at least half the nominal delay.

Error codes (was ``notification.delivery.error_codes``):

Twilio's error catalogue: which codes are permanent, which retryable, and what each means.

One table for the send job (an error answer to a create request) and the status
webhook (a failure reported later), from Twilio's error dictionary
(https://www.twilio.com/docs/api/errors). Twilio warns against relying on exact
codes alone, so unknown codes get a generic meaning that still names the code,
and are retried with the attempt cap (``backends.twilio.failures`` says why).

Payload (was ``notification.delivery.payload``):

The status event: what subscribers (and host projects' signal receivers) are told.

Built in one place from one row shape (``SNAPSHOT_FIELDS``, the columns of a
``Notification.objects.values()`` query), whether the row was read after the
send job's write or returned by the status webhook's ``UPDATE ... RETURNING``:
two builders would let a subscriber see a different event for the same change
depending on which process made it.

Keys are plain snake_case: the GraphQL layer turns an event into its own types.

Optouts (was ``notification.delivery.optouts``):

Opt-outs on the sending side: never hand an opted-out number to Twilio.

Checked inside the claim query (an ``EXISTS`` annotation), so opted-out rows
cost no extra query and never reach the dispatcher. Error 21610 from Twilio
(the recipient replied STOP to Twilio directly) is recorded here too, so the
next message to that number stops on our side.

Reports (was ``notification.delivery.reports``):

Normalized webhook events: what the rest of the code consumes instead of Twilio's form.

Twilio adds form parameters without notice; keeping the raw form on the event
(``raw``) means nothing is lost, while the typed fields are all the logic reads.
"""

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef

from notification.models import DeliveryStatusChoices as Delivery
from notification.models import NotificationStatusChoices as _N
from notification.models import OptOutSourceChoices, SmsOptOut

# -------- delivery ----------------------------------------------------------------------


# -------- statuses ----------------------------------------------------------------------

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


# -------- retry -------------------------------------------------------------------------

RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 30 * 60.0


def retry_delay(attempts: int) -> timedelta:
    """Delay before the next try, after ``attempts`` failed attempts (1-based)."""
    nominal = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    factor = random.uniform(0.5, 1.0)
    return timedelta(seconds=nominal * factor)


def next_attempt_datetime(now: datetime, attempts: int) -> datetime:
    return now + retry_delay(attempts)


def may_retry(attempts: int, max_attempts: int) -> bool:
    """Whether a retryable failure after ``attempts`` attempts gets another one."""
    return attempts < max_attempts


def retry_message(attempts: int, description: str, *, message_sid: str = "") -> str:
    """The notification's status message while it waits for its next attempt."""
    which = f" ({message_sid})" if message_sid else ""
    return f"Attempt {attempts} failed{which}, will retry: {description}"


def gave_up_message(attempts: int, description: str) -> str:
    """The notification's status message once the attempt cap ended the retries."""
    return f"Gave up after {attempts} attempts: {description}"


def ambiguous_message(description: str) -> str:
    """The status message of a send that may or may not have reached the provider.

    At most once: such a message is resent by itself only once reconciliation has
    proved that Twilio never had it (``notification.reconciliation.rows``).
    """
    return (
        f"{description}. The message may or may not have reached Twilio; "
        "its status callbacks or reconciliation with Twilio will settle it, and it is "
        "sent again only if Twilio never had it (staff can resend it)."
    )


# -------- error_codes -------------------------------------------------------------------

# Refused for good: sending again would be refused again.
PERMANENT_CODES = frozenset(
    {21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006, 30007, 30010, 30034}
)
# Known transient codes (any code that is not permanent is retried by the send
# job; a failure reported later by callback is retried only for these).
RETRYABLE_CODES = frozenset({20429, 21611, 30001, 30003, 30008, 30036})
# The recipient replied STOP (https://www.twilio.com/docs/api/errors/21610).
OPT_OUT_CODE = 21610

ERROR_MEANINGS: dict[int, str] = {
    21211: "Invalid 'To' phone number",
    21408: "Sending to this region is not enabled",
    21610: "The recipient replied STOP (unsubscribed)",
    21611: "The sender's queue at Twilio is full",
    21612: "Twilio cannot route to this number",
    21614: "'To' number is not a mobile number",
    30001: "Queue overflow: the sender's queue at Twilio was full",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered by the carrier",
    30008: "Unknown error",
    30010: "Message price exceeds MaxPrice",
    30034: "Message from an unregistered 10DLC number",
    30036: "Validity period expired before delivery",
}


def error_meaning(code: int | None, twilio_message: str = "") -> str:
    """A readable reason: Twilio's own message when it sent one, else our table's."""
    if code is None:
        return twilio_message
    if twilio_message:
        return twilio_message
    return ERROR_MEANINGS.get(code, "Unrecognized Twilio error code")


def describe_error(code: int | None, message: str, *, status: str = "") -> str:
    """How a failure reads in the notification's status message."""
    if code is not None:
        return f"Twilio error {code}: {error_meaning(code, message)}"
    return message or (f"Twilio reported {status}" if status else "")


# -------- payload -----------------------------------------------------------------------

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


# -------- optouts -----------------------------------------------------------------------


def opted_out_annotation() -> Exists:
    """``EXISTS`` for an ``SmsNotification`` queryset: is its number opted out?"""
    return Exists(SmsOptOut.objects.filter(phone_number=OuterRef("to_phone_number")))


def opt_out_reason(phone_number: str) -> str:
    return (
        f"Not sent: {phone_number} has opted out of SMS (replied STOP or was blocked); "
        "it was never handed to Twilio."
    )


def record_twilio_opt_outs(phone_numbers: Iterable[str]) -> None:
    """Record numbers Twilio refused with 21610, in one query; existing ones are kept."""
    numbers = sorted(set(phone_numbers))
    if numbers:
        SmsOptOut.objects.bulk_create(
            [SmsOptOut(phone_number=n, source=OptOutSourceChoices.TWILIO_21610) for n in numbers],
            ignore_conflicts=True,
        )


# -------- reports -----------------------------------------------------------------------

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
