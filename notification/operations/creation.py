"""Creating SMS notifications: the domain rules, with no GraphQL in them.

The GraphQL mutations go through these functions (cancel and resend: ``changes``). The
admin's add form is a plain model form that does not; it shares only the body and
phone-number rules (``validate_body_length``, ``normalize_phone_number``). Here:

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
  see ``notification.idempotency``.

Errors are ``ValidationError``s keyed by the model's field names (``to_phone_number``),
with a ``code`` on each message; the API layer renames fields for its own clients.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from notification.exceptions import SmsNotificationError
from notification.guardrails import countries, quiet_hours, recipients
from notification.idempotency.checks import key_errors
from notification.idempotency.claims import Claim, KeyConflict, create_once
from notification.idempotency.fingerprint import fingerprint
from notification.ids import MAX_DATABASE_ID, parse_database_id
from notification.models import (
    Notification,
    NotificationCategoryChoices,
    NotificationPriorityChoices,
    NotificationTypeChoices,
    SmsNotification,
    SmsOptOut,
    max_length,
    validate_web_url,
)
from notification.phone import normalize_phone_number
from notification.segments import MAX_BODY_CHARACTERS, segment_fields
from notification.sending.wake import notify_if_urgent
from notification.text import unstorable_text_problem

#: Recipients one bulk request may carry: one transaction should stay short.
MAX_BULK_NOTIFICATIONS = 1000

_TITLE_MAX_LENGTH = max_length(Notification, "title")
_URL_MAX_LENGTH = max_length(Notification, "url")


@dataclass(frozen=True, slots=True)
class SmsNotificationRequest:
    """What a caller asks for, as given: ``create_sms_notification(s)`` validates it.

    Ids may be strings (GraphQL ``ID``) or integers.
    """

    title: str
    body: str
    to_phone_number: str
    url: str = ""
    user_id: int | str | None = None
    publish_datetime: datetime.datetime | None = None
    priority: int = NotificationPriorityChoices.NORMAL
    content_type: str | None = None
    object_id: int | str | None = None
    idempotency_key: str | None = None
    category: str = NotificationCategoryChoices.TRANSACTIONAL
    #: IANA name overriding the number's zones for quiet hours (validated).
    recipient_time_zone: str | None = None


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


@dataclass(slots=True)
class _CleanSms:
    """One request after per-item validation, before the cross-row lookups."""

    title: str
    body: str
    url: str
    to_phone_number: str
    user_id: int | None
    #: None means "now", resolved when written: a retry must fingerprint like the first.
    publish_datetime: datetime.datetime | None
    priority: int
    content_type: ContentType | None
    object_id: int | None
    category: str
    recipient_time_zone: str


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
    cleaned: list[_CleanSms] = []
    errors: dict[int, dict[str, list[ValidationError]]] = {}
    for index, request in enumerate(requests):
        item, item_errors = _clean_item(request, content_types)
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


# --- validation -----------------------------------------------------------------


def validate_body_length(body: str) -> None:
    """Raise ``ValidationError`` (code ``max_length``) for a body SMS cannot carry.

    Shared with the admin form, so both refuse the same bodies with the same message.
    """
    if len(body) > MAX_BODY_CHARACTERS:
        raise ValidationError(
            "The body has %(length)d characters; SMS allows at most %(limit)d.",
            code="max_length",
            params={"length": len(body), "limit": MAX_BODY_CHARACTERS},
        )


def _clean_item(
    request: SmsNotificationRequest,
    content_types: dict[str, ContentType | None],
) -> tuple[_CleanSms, dict[str, list[ValidationError]]]:
    """Check each field on its own (content types through the request-wide cache).

    Returns the cleaned item and the errors by field; the item is only fit to write when
    there are none (references are checked later, for all items at once).
    """
    errors: dict[str, list[ValidationError]] = defaultdict(list)

    def fail(field: str, message: str, code: str, **params: object) -> None:
        errors[field].append(ValidationError(message, code=code, params=params or None))

    title = (request.title or "").strip()
    if problem := unstorable_text_problem(title):
        fail("title", problem, "invalid")
    elif not title:
        fail("title", "A title is required.", "required")
    elif len(title) > _TITLE_MAX_LENGTH:
        fail(
            "title",
            "The title has %(length)d characters; at most %(limit)d are allowed.",
            "max_length",
            length=len(title),
            limit=_TITLE_MAX_LENGTH,
        )

    body = request.body or ""
    if problem := unstorable_text_problem(body):
        fail("body", problem, "invalid")
    elif not body.strip():
        fail("body", "The message body is required.", "required")
    else:
        try:
            validate_body_length(body)
        except ValidationError as exc:
            errors["body"].extend(exc.error_list)

    to_phone_number = ""
    try:
        to_phone_number = normalize_phone_number(request.to_phone_number)
    except ValidationError as exc:
        errors["to_phone_number"].extend(exc.error_list)
    else:
        try:
            countries.check_allowed(to_phone_number)
        except ValidationError as exc:
            errors["to_phone_number"].extend(exc.error_list)

    category = request.category
    if category not in NotificationCategoryChoices.values:
        fail("category", "%(value)r is not a valid category.", "invalid_choice", value=category)

    recipient_time_zone = ""
    if request.recipient_time_zone:
        try:
            recipient_time_zone = quiet_hours.validate_time_zone(request.recipient_time_zone)
        except ValidationError as exc:
            errors["recipient_time_zone"].extend(exc.error_list)

    url = (request.url or "").strip()
    if problem := unstorable_text_problem(url):
        fail("url", problem, "invalid")
    elif url:
        if len(url) > _URL_MAX_LENGTH:
            fail(
                "url",
                "The URL is longer than %(limit)d characters.",
                "max_length",
                limit=_URL_MAX_LENGTH,
            )
        else:
            try:
                validate_web_url(url)  # the model field's own rule
            except ValidationError as exc:
                errors["url"].extend(exc.error_list)

    user_id = _parse_id(request.user_id, "user_id", errors)
    object_id = _parse_id(request.object_id, "object_id", errors)

    publish_datetime = _utc_datetime(request.publish_datetime, fail)

    priority = request.priority
    if priority not in NotificationPriorityChoices.values:
        fail("priority", "%(value)r is not a valid priority.", "invalid_choice", value=priority)

    content_type = None
    if request.content_type and (problem := unstorable_text_problem(request.content_type)):
        fail("content_type", problem, "invalid")
    elif request.content_type:
        label = request.content_type.strip().lower()
        if label not in content_types:
            content_types[label] = _content_type(label)
        content_type = content_types[label]
        if content_type is None:
            fail(
                "content_type",
                'There is no model %(label)r; give it as "app_label.model", e.g. "auth.user".',
                "does_not_exist",
                label=request.content_type,
            )
    elif object_id is not None:
        fail("object_id", "An object id needs a content type.", "requires_content_type")

    return (
        _CleanSms(
            title=title,
            body=body,
            url=url,
            to_phone_number=to_phone_number,
            user_id=user_id,
            publish_datetime=publish_datetime,
            priority=priority,
            content_type=content_type,
            object_id=object_id,
            category=str(category),
            recipient_time_zone=recipient_time_zone,
        ),
        dict(errors),
    )


def _utc_datetime(
    value: datetime.datetime | None, fail: Callable[[str, str, str], None]
) -> datetime.datetime | None:
    """``value`` in UTC (stored as UTC anyway, so the result matches later reads).

    Naive times are refused (see the module docstring), and so are times whose UTC
    equivalent leaves Python's years 1-9999 (year 1 at +14:00 is year 0 in UTC).
    """
    if value is None:
        return None
    if timezone.is_naive(value):
        fail(
            "publish_datetime",
            "Give the time with a UTC offset (for example 2030-01-01T09:00:00+00:00).",
            "naive_datetime",
        )
        return None
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        fail("publish_datetime", "The time is out of range once converted to UTC.", "invalid")
        return None


def _parse_id(
    value: int | str | None, field: str, errors: dict[str, list[ValidationError]]
) -> int | None:
    if value is None or value == "":
        return None
    parsed = parse_database_id(value.strip() if isinstance(value, str) else value)
    if parsed is None:
        errors[field].append(
            ValidationError(
                "%(value)r is not a valid id (a whole number from 1 to %(max)d).",
                code="invalid",
                params={"value": value, "max": MAX_DATABASE_ID},
            )
        )
    return parsed


def _content_type(label: str) -> ContentType | None:
    """The content type for ``"app_label.model"``, or None if there is no such model."""
    app_label, dot, model = label.partition(".")
    if not dot or not app_label or not model:
        return None
    try:
        # Cached by Django per process once found.
        content_type = ContentType.objects.get_by_natural_key(app_label, model)
    except ContentType.DoesNotExist:
        return None
    return content_type if content_type.model_class() is not None else None


def _check_references(
    cleaned: list[_CleanSms],
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
    cleaned: list[_CleanSms], indexes: list[int], created_by_id: int | None
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


def _insert(items: list[_CleanSms], created_by_id: int | None) -> list[Notification]:
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
