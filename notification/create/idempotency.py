"""Idempotency keys for creating notifications: a retried create returns the first result.

A frontend whose create request timed out cannot know whether it reached us; retrying
without a key would create (and send) the SMS twice. With a key, the first request
creates and remembers ``(caller, key) -> notification`` in the same transaction, and
every later request with that key gets the same notification back.

* ``notification.models.IdempotencyKey``: the remembered keys, unique per caller (the
  database enforces it);
* ``checks``: which keys a request may carry;
* ``fingerprint``: what "the same input" means;
* ``claims``: create-or-replay, safe under concurrent retries;
* ``expiry``: keys are forgotten after ``SMS_IDEMPOTENCY_TTL`` seconds.

Checks (was ``notification.idempotency.checks``):

Which idempotency keys a create request may carry, checked before anything is written.

Fingerprint (was ``notification.idempotency.fingerprint``):

What "the same input" means for an idempotency key: a hash of the normalised input.

The hash is taken over the request *after* validation has normalised it (trimmed title,
E.164 number, UTC time, content type label), i.e. over what would be stored. So a retry
that spells the number ``+1 415 555 0100`` instead of ``+14155550100`` is the same
request, while any change to what would be stored (another body, another recipient, a
different time) is a different one and the key is refused for it.

Expiry (was ``notification.idempotency.expiry``):

Keys are remembered for ``SMS_IDEMPOTENCY_TTL`` seconds, then forgotten.

The age is judged against the current setting (not a stored expiry time), so shortening
or lengthening the TTL applies to keys already remembered. A key past its TTL counts as
unknown even before the sweep has deleted it: ``claims`` deletes it in the create
transaction and the key starts afresh.

Claims (was ``notification.idempotency.claims``):

Create-or-replay for a create request whose items may carry idempotency keys.

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

import dataclasses
import datetime
import enum
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from notification.conf import app_settings
from notification.exceptions import SmsNotificationError
from notification.models import IdempotencyKey, Notification, max_length

# -------- idempotency -------------------------------------------------------------------


# -------- checks ------------------------------------------------------------------------

#: The longest key a client may send: the column's width.
MAX_KEY_LENGTH = max_length(IdempotencyKey, "key")


def key_errors(
    keys: Sequence[str | None], caller_id: int | None
) -> list[tuple[int, ValidationError]]:
    """The problems with each item's key, as ``(index, error)``; items without a key pass.

    * 1 to ``MAX_KEY_LENGTH`` printable characters: a key is opaque and compared byte for
      byte, so nothing is trimmed; control characters are refused rather than stored.
    * A key needs a caller: keys are scoped per user, and one with no user could never
      be found again.
    * A key appears at most once per request: two items sharing one would have to be
      one notification and two at once (the later item is the one refused).
    """
    problems: list[tuple[int, ValidationError]] = []
    first_index: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        error = _key_error(key, caller_id)
        if error is None and key in first_index:
            error = ValidationError(
                "This idempotency key is already used by item %(first)d of this request; "
                "each item needs its own key.",
                code="duplicate_idempotency_key",
                params={"first": first_index[key]},
            )
        first_index.setdefault(key, index)
        if error is not None:
            problems.append((index, error))
    return problems


def _key_error(key: str, caller_id: int | None) -> ValidationError | None:
    if not key:
        return ValidationError("An idempotency key cannot be empty.", code="required")
    if len(key) > MAX_KEY_LENGTH:
        return ValidationError(
            "The idempotency key has %(length)d characters; at most %(limit)d are allowed.",
            code="max_length",
            params={"length": len(key), "limit": MAX_KEY_LENGTH},
        )
    if not key.isprintable():
        return ValidationError(
            "An idempotency key may contain only printable characters (no control "
            "characters or line breaks).",
            code="invalid",
        )
    if caller_id is None:
        return ValidationError(
            "An idempotency key needs a logged-in caller: keys are remembered per user.",
            code="requires_user",
        )
    return None


# -------- fingerprint -------------------------------------------------------------------

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Bumped if the encoding ever changes, so an old fingerprint never matches by accident.
_VERSION = "v1"


def fingerprint(item: "DataclassInstance") -> str:
    """SHA-256 (hex) of a normalised request dataclass: its field names and values."""
    fields = {field.name: getattr(item, field.name) for field in dataclasses.fields(item)}
    canonical = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode
    )
    return hashlib.sha256(f"{_VERSION}:{canonical}".encode()).hexdigest()


def _encode(value: object) -> object:
    """JSON for the value types a normalised request holds besides str, int and None."""
    if isinstance(value, datetime.datetime):
        # One instant, one text: the same moment in two zones hashes the same.
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, ContentType):
        return f"{value.app_label}.{value.model}"
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


# -------- expiry ------------------------------------------------------------------------


def expiry_cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    """Keys created before this instant are forgotten."""
    return (now or timezone.now()) - datetime.timedelta(seconds=app_settings.SMS_IDEMPOTENCY_TTL)


def forget_expired_keys(now: datetime.datetime | None = None) -> int:
    """Delete every expired key in one DELETE, however many there are; returns the count.

    Nothing references ``IdempotencyKey`` and it has no delete signals, so Django deletes
    the rows with a single query instead of loading them first.
    """
    deleted, _ = IdempotencyKey.objects.filter(created_datetime__lt=expiry_cutoff(now)).delete()
    return deleted


# -------- claims ------------------------------------------------------------------------

logger = logging.getLogger("notification.create.idempotency")

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
