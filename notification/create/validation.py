"""One create request's input mapped onto the model's fields, judged by the model's rules.

What a valid notification is (title, body, link, priority, category, recipient) is the
model's to say: its fields carry the rules (``notification.validators``) and
``full_clean()`` applies them, as the admin's forms do. This module only does what a
request needs beyond that: it converts the input (trims, E.164, UTC, ids, the content
type label) and reports problems with the names and codes the API has always used.

Each field gets at most one error, the first rule it breaks (each validator checks in a
fixed order); a field that could not be converted is not judged again by the model.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Field, Model
from django.utils import timezone

from notification.guardrails import places as quiet_hours
from notification.models import (
    Notification,
    NotificationCategoryChoices,
    NotificationPriorityChoices,
    SmsNotification,
)
from notification.validators import validate_storable_text
from notification.values import MAX_DATABASE_ID, normalize_phone_number, parse_database_id

Errors = dict[str, list[ValidationError]]

#: Django's codes for a missing value, as the API has always named them (public codes).
_API_CODES = {"blank": "required", "null": "required"}

#: The order the API lists an item's errors in (the order it always has).
_FIELD_ORDER = (
    "title",
    "body",
    "to_phone_number",
    "category",
    "recipient_time_zone",
    "url",
    "user_id",
    "object_id",
    "publish_datetime",
    "priority",
    "content_type",
)


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


@dataclass(slots=True)
class CleanSms:
    """One request after per-item validation, before the cross-row lookups.

    Its fields are what an idempotency key's fingerprint is taken over: renaming or
    adding one changes every fingerprint (``notification.create.idempotency``).
    """

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


def clean_item(
    request: SmsNotificationRequest, content_types: dict[str, ContentType | None]
) -> tuple[CleanSms, Errors]:
    """The request as model values, and its errors by model field name.

    The item is only fit to write when there are none (references are checked later,
    for all items at once). ``content_types`` caches label lookups across a bulk request.
    """
    errors: Errors = defaultdict(list)
    item = CleanSms(
        title=(request.title or "").strip(),
        body=request.body or "",
        url=(request.url or "").strip(),
        to_phone_number=_converted(
            normalize_phone_number, request.to_phone_number, "to_phone_number", errors
        ),
        user_id=_parse_id(request.user_id, "user_id", errors),
        publish_datetime=_utc_datetime(request.publish_datetime, errors),
        priority=request.priority,
        content_type=_content_type(request.content_type, content_types, errors),
        object_id=_parse_id(request.object_id, "object_id", errors),
        category=str(request.category),
        recipient_time_zone=_time_zone(request.recipient_time_zone, errors),
    )
    for field, error in _model_errors(item, judged_elsewhere=set(errors)).items():
        errors[field].append(error)
    return item, {field: errors[field] for field in _FIELD_ORDER if field in errors}


def _model_errors(item: CleanSms, judged_elsewhere: set[str]) -> dict[str, ValidationError]:
    """The model's verdict on the item's values: the first error of each field.

    Each field's own ``clean()`` (its validators, choices, blank, ``max_length``) and
    the model's ``clean()`` (the rules across fields), as ``full_clean`` runs them, but
    only for the fields a request sets: ``full_clean`` would also walk the other
    twenty-odd fields of the two models for every item of a bulk request (three times
    the time), and query for the looked-up ones (``check_references`` does that once
    for all items). A field that could not be converted is not judged, nor an object
    id whose content type could not be read.
    """
    found: dict[str, ValidationError] = {}
    for model, name in _JUDGED:
        if name not in judged_elsewhere:
            try:
                _field(model, name).clean(getattr(item, name), None)
            except ValidationError as exc:
                found[name] = _as_api_error(exc.error_list[0])
    if "content_type" not in judged_elsewhere:
        try:
            Notification(content_type=item.content_type, object_id=item.object_id).clean()
        except ValidationError as exc:
            for name, errors in exc.error_dict.items():
                if name not in judged_elsewhere:
                    found.setdefault(name, _as_api_error(errors[0]))
    return found


#: The model fields a request sets (``CleanSms`` has the same names), each judged by
#: its own ``Field.clean``; the rest are defaults, or looked up.
_JUDGED: tuple[tuple[type[Model], str], ...] = (
    (Notification, "title"),
    (Notification, "body"),
    (Notification, "url"),
    (Notification, "priority"),
    (Notification, "category"),
    (SmsNotification, "to_phone_number"),
)


def _field(model: type[Model], name: str) -> Field:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), name  # a column, not a relation's other side
    return field


def _as_api_error(error: ValidationError) -> ValidationError:
    code = _API_CODES.get(error.code or "", error.code)
    if code == error.code:
        return error
    return ValidationError(error.message, code=code, params=error.params)


def _converted(convert: Callable[[str], str], value: str, field: str, errors: Errors) -> str:
    """``convert(value)``, or ``""`` with its error recorded under ``field``."""
    try:
        return convert(value)
    except ValidationError as exc:
        errors[field].extend(exc.error_list)
        return ""


def _time_zone(name: str | None, errors: Errors) -> str:
    if not name:
        return ""
    try:
        return quiet_hours.validate_time_zone(name)
    except ValidationError as exc:
        errors["recipient_time_zone"].extend(exc.error_list)
        return ""


def _utc_datetime(value: datetime.datetime | None, errors: Errors) -> datetime.datetime | None:
    """``value`` in UTC (stored as UTC anyway, so the result matches later reads).

    A naive time is refused rather than guessed (assuming UTC or the server's zone is
    how messages go out hours early or late), and so is one whose UTC equivalent leaves
    Python's years 1-9999 (year 1 at +14:00 is year 0 in UTC).
    """
    if value is None:
        return None
    if timezone.is_naive(value):
        errors["publish_datetime"].append(
            ValidationError(
                "Give the time with a UTC offset (for example 2030-01-01T09:00:00+00:00).",
                code="naive_datetime",
            )
        )
        return None
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        errors["publish_datetime"].append(
            ValidationError("The time is out of range once converted to UTC.", code="invalid")
        )
        return None


def _parse_id(value: int | str | None, field: str, errors: Errors) -> int | None:
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


def _content_type(
    label: str | None, cache: dict[str, ContentType | None], errors: Errors
) -> ContentType | None:
    """The content type named ``"app_label.model"`` (looked up once per bulk request)."""
    if not label:
        return None
    try:
        validate_storable_text(label)
    except ValidationError as exc:
        errors["content_type"].extend(exc.error_list)
        return None
    key = label.strip().lower()
    if key not in cache:
        cache[key] = _lookup_content_type(key)
    if cache[key] is None:
        errors["content_type"].append(
            ValidationError(
                'There is no model %(label)r; give it as "app_label.model", e.g. "auth.user".',
                code="does_not_exist",
                params={"label": label},
            )
        )
    return cache[key]


def _lookup_content_type(label: str) -> ContentType | None:
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
