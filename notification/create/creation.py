"""Creating SMS notifications: the domain rules, with no GraphQL in them.

The GraphQL mutations go through these functions (cancel and resend: ``changes``). What
a valid notification is, is the model's to say (its fields' validators, ``full_clean``):
the admin's forms and these functions apply the same rules (``validation`` maps a
request onto the model's fields). Here:

* every input is validated before anything is written, and an invalid request writes
  nothing at all (not even the valid items of a bulk request);
* a ``Notification`` and its ``SmsNotification`` are written in one transaction, so there
  is never half a pair;
* a bulk request is a handful of queries whatever its size (``bulk_create``, one lookup
  per kind of referenced row), so 1,000 recipients stay fast.

Decisions a caller should know about:

* ``publish_datetime`` must be timezone-aware. A naive value is rejected rather than
  guessed: silently assuming UTC (or the server's zone) is how messages go out hours
  early or late. ``None`` means "now".
* ``content_type`` is ``"app_label.model"``. ``object_id`` requires it and must name an
  existing object of that model; a content type alone is allowed (a notification about a
  kind of thing rather than one row).
* Creating for a number in ``SmsOptOut`` succeeds, and the result says so (``opted_out``):
  the send job, not creation, refuses to send it, so the record stays visible.
* The guardrails that are about the request itself refuse it here: a number outside
  ``SMS_ALLOWED_COUNTRIES`` (``country_not_allowed``), one more message than
  ``SMS_RECIPIENT_DAILY_LIMIT`` allows (``recipient_limit_reached``, checked after
  replays are known), an unknown ``recipient_time_zone`` (``invalid_time_zone``). The
  send-time ones (quiet hours, spend limits) are ``notification.guardrails.screen``'s.
* An item may carry an ``idempotency_key`` (scoped to ``caller_id``): a retry with the
  same key and input returns the first result (``replayed``) instead of creating again;
  see ``notification.create.idempotency``.

Errors are ``ValidationError``s keyed by the model's field names (``to_phone_number``),
with a ``code`` on each message; the API layer renames fields for its own clients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from notification.create.idempotency import Claim, KeyConflict, create_once, fingerprint, key_errors
from notification.create.validation import CleanSms, SmsNotificationRequest, clean_item
from notification.exceptions import SmsNotificationError
from notification.guardrails import costs as recipients
from notification.models import Notification, NotificationTypeChoices, SmsNotification, SmsOptOut
from notification.send.wake import notify_if_urgent
from notification.values import segment_fields

__all__ = [
    "MAX_BULK_NOTIFICATIONS",
    "BulkValidationError",
    "CreatedSmsNotification",
    "SmsNotificationRequest",
    "create_sms_notification",
    "create_sms_notifications",
]

#: Recipients one bulk request may carry: one transaction should stay short.
MAX_BULK_NOTIFICATIONS = 1000


@dataclass(frozen=True, slots=True)
class CreatedSmsNotification:
    """A created notification (with ``notification.sms`` loaded), whether its number
    has opted out (the send job will fail it instead of sending), and whether it was
    replayed: created by an earlier request with the same idempotency key."""

    notification: Notification
    opted_out: bool
    replayed: bool = False


class BulkValidationError(SmsNotificationError):
    """Some items of a bulk request are invalid; nothing was written.

    ``errors`` maps each invalid item's index in the request to its ``ValidationError``
    (which has an ``error_dict`` keyed by field name).
    """

    def __init__(self, errors: dict[int, ValidationError]):
        self.errors = dict(sorted(errors.items()))
        super().__init__(f"{len(self.errors)} invalid item(s) at indexes {list(self.errors)}")


def create_sms_notification(
    request: SmsNotificationRequest, *, caller_id: int | None = None
) -> CreatedSmsNotification:
    """Validate and create one notification with its SMS, atomically.

    Raises ``ValidationError`` (with ``error_dict``) and writes nothing when invalid.
    ``caller_id`` (a user's id, or None) is recorded as the creator and scopes the
    request's idempotency keys.
    """
    try:
        (created,) = create_sms_notifications([request], caller_id=caller_id)
    except BulkValidationError as exc:
        raise exc.errors[0] from None
    return created


def create_sms_notifications(
    requests: Sequence[SmsNotificationRequest], *, caller_id: int | None = None
) -> list[CreatedSmsNotification]:
    """Validate and create many notifications, all or nothing, in one transaction.

    Raises ``ValidationError`` for a request that is too large, and
    ``BulkValidationError`` (index -> error) when any item is invalid or reuses an
    idempotency key of ``caller_id`` with other input. The returned list is in request
    order; items whose key was seen are the earlier notifications, ``replayed``.
    ``caller_id`` (a user's id, or None) is recorded as the creator of every new
    notification.
    """
    if len(requests) > MAX_BULK_NOTIFICATIONS:
        raise ValidationError(
            "At most %(limit)d notifications can be created at once; got %(count)d.",
            code="too_many",
            params={"limit": MAX_BULK_NOTIFICATIONS, "count": len(requests)},
        )
    if not requests:
        return []

    content_types: dict[str, ContentType | None] = {}
    cleaned: list[CleanSms] = []
    errors: dict[int, dict[str, list[ValidationError]]] = {}
    for index, request in enumerate(requests):
        item, item_errors = clean_item(request, content_types)
        cleaned.append(item)
        if item_errors:
            errors[index] = item_errors
    # Checked for every item, also those with other errors, so all problems show at once.
    for index, field, error in _check_references(cleaned):
        errors.setdefault(index, {}).setdefault(field, []).append(error)
    for index, error in key_errors([r.idempotency_key for r in requests], caller_id):
        errors.setdefault(index, {}).setdefault("idempotency_key", []).append(error)

    if errors:
        raise BulkValidationError(
            {index: ValidationError(item_errors) for index, item_errors in errors.items()}
        )
    claims = [
        None
        if request.idempotency_key is None
        else Claim(request.idempotency_key, fingerprint(item))
        for request, item in zip(requests, cleaned, strict=True)
    ]
    try:
        written = create_once(
            caller_id,
            claims,
            insert=lambda indexes: _insert_within_caps(cleaned, indexes, caller_id),
        )
    except KeyConflict as exc:
        raise BulkValidationError(exc.errors) from None
    return _with_opt_outs(written)


# --- validation (per item: ``validation.clean_item``) ------------------------------


def _check_references(
    cleaned: list[CleanSms],
) -> list[tuple[int, str, ValidationError]]:
    """Check referenced users and objects exist: one query per kind, not per item."""
    problems: list[tuple[int, str, ValidationError]] = []

    user_ids = {item.user_id for item in cleaned if item.user_id is not None}
    if user_ids:
        existing_users = set(
            get_user_model()._default_manager.filter(pk__in=user_ids).values_list("pk", flat=True)
        )
        for index, item in enumerate(cleaned):
            if item.user_id is not None and item.user_id not in existing_users:
                problems.append(
                    (
                        index,
                        "user_id",
                        ValidationError(
                            "There is no user with id %(id)s.",
                            code="does_not_exist",
                            params={"id": item.user_id},
                        ),
                    )
                )

    wanted: dict[ContentType, set[int]] = defaultdict(set)
    for item in cleaned:
        if item.content_type is not None and item.object_id is not None:
            wanted[item.content_type].add(item.object_id)
    existing_objects: dict[ContentType, set[object]] = {}
    for content_type, object_ids in wanted.items():
        model: type[models.Model] = content_type.model_class()  # type: ignore[assignment]
        try:
            existing_objects[content_type] = set(
                model._base_manager.filter(pk__in=object_ids).values_list("pk", flat=True)
            )
        except (TypeError, ValueError, ValidationError):
            existing_objects[content_type] = set()  # its primary key is not an integer
    for index, item in enumerate(cleaned):
        if item.content_type is None or item.object_id is None:
            continue
        if item.object_id not in existing_objects[item.content_type]:
            problems.append(
                (
                    index,
                    "object_id",
                    ValidationError(
                        "There is no %(model)s with id %(id)s.",
                        code="does_not_exist",
                        params={"model": item.content_type.model, "id": item.object_id},
                    ),
                )
            )
    return problems


# --- writing --------------------------------------------------------------------


def _insert_within_caps(
    cleaned: list[CleanSms], indexes: list[int], created_by_id: int | None
) -> list[Notification]:
    """Insert the items at ``indexes`` (those not replayed) unless one would pass
    ``SMS_RECIPIENT_DAILY_LIMIT``: then ``BulkValidationError``, and the caller's
    transaction writes nothing. Checked here, after replays are known, so a retry
    of an already created message is never refused by the cap it is part of."""
    over = recipients.cap_errors([(i, cleaned[i].to_phone_number) for i in indexes], timezone.now())
    if over:
        raise BulkValidationError(
            {i: ValidationError({"to_phone_number": [error]}) for i, error in over.items()}
        )
    return _insert([cleaned[i] for i in indexes], created_by_id)


def _insert(items: list[CleanSms], created_by_id: int | None) -> list[Notification]:
    now = timezone.now()
    notifications = [
        Notification(
            title=item.title,
            body=item.body,
            url=item.url,
            type=NotificationTypeChoices.SMS,
            user_id=item.user_id,
            created_by_id=created_by_id,
            publish_datetime=item.publish_datetime or now,
            priority=int(item.priority),
            content_type=item.content_type,
            object_id=item.object_id,
            category=item.category,
        )
        for item in items
    ]
    with transaction.atomic():
        Notification.objects.bulk_create(notifications)
        sms_rows = []
        for notification, item in zip(notifications, items, strict=True):
            # Assigning the forward side also caches ``notification.sms``.
            sms_rows.append(
                SmsNotification(
                    notification=notification,
                    to_phone_number=item.to_phone_number,
                    recipient_time_zone=item.recipient_time_zone,
                    **segment_fields(item.body),
                )
            )
        SmsNotification.objects.bulk_create(sms_rows)
        # bulk_create sends no post_save: a due HIGH one starts a run itself.
        notify_if_urgent(notifications)
    return notifications


def _with_opt_outs(written: list[tuple[Notification, bool]]) -> list[CreatedSmsNotification]:
    """The results, each with its number's opt-out state: one query for all of them."""
    opted_out = set(
        SmsOptOut.objects.filter(
            phone_number__in={n.sms.to_phone_number for n, _ in written}
        ).values_list("phone_number", flat=True)
    )
    return [
        CreatedSmsNotification(
            notification=n, opted_out=n.sms.to_phone_number in opted_out, replayed=replayed
        )
        for n, replayed in written
    ]
