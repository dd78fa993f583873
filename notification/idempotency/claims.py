"""Create-or-replay for a create request whose items may carry idempotency keys.

In one transaction: forget this request's expired keys, look up the rest, then

* a key found with the same fingerprint: replay (its notification, as it is now);
* a key found with another fingerprint: refuse the whole request, nothing written;
* no key, or a new one: create the notification and remember the key.

Concurrent retries with one key (the client gave up waiting and sent again) may both
find nothing and both create. Remembering the key then hits the unique constraint for
all but one of them: on PostgreSQL the later INSERT waits for the first transaction and
fails once it commits; on SQLite the IMMEDIATE transactions of the settings run writers
one at a time, so the later one already finds the key. The loser's transaction is rolled
back with the notifications it made, and it starts again: this time it finds the key
and replays. Without the constraint the same race would create and send the SMS twice.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from notification.exceptions import SmsNotificationError
from notification.idempotency.expiry import expiry_cutoff
from notification.models import IdempotencyKey, Notification

logger = logging.getLogger("notification.idempotency")

CONFLICT_MESSAGE = (
    "This idempotency key was already used with different input; use a new key for a "
    "new notification, or resend exactly the first input to get its result."
)


@dataclass(frozen=True, slots=True)
class Claim:
    """One item's key and the fingerprint of its normalised input."""

    key: str
    fingerprint: str


class KeyConflict(SmsNotificationError):
    """Keys already used with other input; nothing was written.

    ``errors`` maps each such item's index to a ``ValidationError`` on ``idempotency_key``
    (code ``idempotency_conflict``).
    """

    def __init__(self, errors: dict[int, ValidationError]):
        self.errors = errors
        super().__init__(f"idempotency key conflict at indexes {sorted(errors)}")


class _KeyTaken(IntegrityError):
    """A concurrent request remembered one of our keys first: start again."""


def create_once(
    caller_id: int | None,
    claims: Sequence[Claim | None],
    insert: Callable[[list[int]], Sequence[Notification]],
) -> list[tuple[Notification, bool]]:
    """Each item's notification and whether it was replayed, in request order.

    ``insert(indexes)`` writes the notifications of the items at ``indexes`` (request
    order) in the caller's transaction and returns them in that order; it is only
    called for items that are neither replayed nor refused. Items whose claim is None
    carry no key and are always created. Raises ``KeyConflict`` (nothing written).
    """
    keys = {claim.key for claim in claims if claim is not None}
    if not keys:
        return [(notification, False) for notification in insert(list(range(len(claims))))]
    # Creating needs notification.add_notification, so a caller with keys is logged in.
    assert caller_id is not None, "idempotency keys belong to a logged-in caller"
    # Each retry means another transaction committed one of our keys, which the next
    # attempt finds: one retry per key is enough. Beyond that the error is not a race
    # we can settle, and it is raised.
    for _ in range(len(keys)):
        try:
            return _create_or_replay(caller_id, claims, keys, insert)
        except _KeyTaken:
            logger.info("idempotency key taken by a concurrent request; looking again")
    return _create_or_replay(caller_id, claims, keys, insert)


def _create_or_replay(
    caller_id: int,
    claims: Sequence[Claim | None],
    keys: set[str],
    insert: Callable[[list[int]], Sequence[Notification]],
) -> list[tuple[Notification, bool]]:
    with transaction.atomic():
        mine = IdempotencyKey.objects.filter(user_id=caller_id, key__in=keys)
        mine.filter(created_datetime__lt=expiry_cutoff()).delete()
        known = {row.key: row for row in mine.select_related("notification__sms")}

        results: dict[int, tuple[Notification, bool]] = {}
        conflicts: dict[int, ValidationError] = {}
        new: list[int] = []
        for index, claim in enumerate(claims):
            row = known.get(claim.key) if claim is not None else None
            if row is None:
                new.append(index)
            elif row.fingerprint == claim.fingerprint:  # type: ignore[union-attr]
                results[index] = (row.notification, True)
            else:
                conflicts[index] = ValidationError(
                    {
                        "idempotency_key": [
                            ValidationError(CONFLICT_MESSAGE, code="idempotency_conflict")
                        ]
                    }
                )
        if conflicts:
            raise KeyConflict(conflicts)

        created = insert(new) if new else []
        remembered = []
        for index, notification in zip(new, created, strict=True):
            results[index] = (notification, False)
            claim = claims[index]
            if claim is not None:
                remembered.append(
                    IdempotencyKey(
                        user_id=caller_id,
                        key=claim.key,
                        fingerprint=claim.fingerprint,
                        notification=notification,
                    )
                )
        # In key order, so two bulk requests sharing keys wait for each other's keys in
        # the same order: one waits, neither deadlocks.
        remembered.sort(key=lambda row: row.key)
        try:
            IdempotencyKey.objects.bulk_create(remembered)
        except IntegrityError as exc:
            raise _KeyTaken from exc  # leaving the block rolls everything back
    return [results[index] for index in range(len(claims))]
