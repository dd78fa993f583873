"""Mutations: log in and out, create SMS notifications (one or many), cancel.

Each group is its own class; ``schema/schema.py`` merges them (and any other module's
mutation class) into the single ``Mutation`` type with ``strawberry.tools.merge_types``.

Field errors (was ``notification.graphql.field_errors``):

Structured errors in mutation payloads: which input field, what, and a stable code.

Validation problems are data (``errors`` in the payload), so a form can show each
message next to its field. Authentication and permission problems are GraphQL errors
(top-level ``errors``): the caller cannot fix those by editing the input.

Inputs (was ``notification.graphql.inputs``):

Mutation inputs.

Resend (was ``notification.graphql.resend``):

``resendNotification(id)``: staff resend of an SMS whose fate is unknown (or failed).

The send job never resends an ``unknown`` message by itself (it may already be
at Twilio); a person with ``notification.change_notification`` decides. Merged
into ``Mutation`` by ``schema/schema.py`` (``MUTATION_TYPES``). The rules live in
``notification.create.changes`` and are shared with the admin action.
"""

import datetime

import strawberry
import strawberry_django
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case
from strawberry_django.auth.utils import get_current_user

from notification.create import changes
from notification.create import creation as services
from notification.create.changes import NotificationNotFound, ResendError, resend_notification
from notification.graphql.filters import (
    ADD_PERMISSION,
    CHANGE_PERMISSION,
    NotificationCategory,
    NotificationPriority,
    permission_required,
    visible_notifications,
)
from notification.graphql.throttles import segment_quota, user_rate_limit
from notification.graphql.types import OPTED_OUT_ANNOTATION, Notification
from notification.models import Notification as NotificationModel

# -------- field_errors ------------------------------------------------------------------


@strawberry.type(description="A problem with the input, or a warning about it.")
class FieldError:
    field: str | None = strawberry.field(
        description="The GraphQL input field (camelCase, e.g. toPhoneNumber); null when the "
        "problem is with the request as a whole."
    )
    message: str = strawberry.field(description="Human-readable, for showing next to the field.")
    code: str = strawberry.field(
        description="Stable, for code: required, max_length, invalid, invalid_phone_number, "
        "does_not_exist, naive_datetime, invalid_choice, requires_content_type, too_many, "
        "not_found, not_pending, not_resendable, opted_out, duplicate_idempotency_key, "
        "idempotency_conflict, replayed."
    )
    index: int | None = strawberry.field(
        default=None,
        description="Position of the item in the input list (bulk mutations), else null.",
    )


def field_errors(error: ValidationError, *, index: int | None = None) -> list[FieldError]:
    """Turn a Django ``ValidationError`` into ``FieldError``s with GraphQL field names."""
    if hasattr(error, "error_dict"):
        return [
            FieldError(
                field=None if name == NON_FIELD_ERRORS else to_camel_case(name),
                message=_text(item),
                code=item.code or "invalid",
                index=index,
            )
            for name, items in error.error_dict.items()
            for item in items
        ]
    return [
        FieldError(field=None, message=_text(item), code=item.code or "invalid", index=index)
        for item in error.error_list
    ]


def _text(error: ValidationError) -> str:
    message = str(error.message)
    return message % error.params if error.params else message


# -------- inputs ------------------------------------------------------------------------


@strawberry.input(description="One SMS notification to create.")
class CreateSmsNotificationInput:
    title: str = strawberry.field(description="Required, at most 255 characters.")
    body: str = strawberry.field(
        description="The SMS text: required, at most 1,600 characters (see smsSegments)."
    )
    to_phone_number: str = strawberry.field(
        description="E.164 (+14155550100) or a national number of DEFAULT_PHONE_REGION."
    )
    url: str | None = strawberry.field(default=None, description="An http(s) link, optional.")
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="The recipient user, optional; must exist."
    )
    publish_datetime: datetime.datetime | None = strawberry.field(
        default=None,
        description="Not sent before this. Needs a UTC offset (naive times are rejected); "
        "default now.",
    )
    priority: NotificationPriority = strawberry.field(
        default=NotificationPriority.NORMAL, description="HIGH is sent first."
    )
    content_type: str | None = strawberry.field(
        default=None, description='What it is about, as "app_label.model" (e.g. "auth.user").'
    )
    object_id: strawberry.ID | None = strawberry.field(
        default=None, description="An existing object of contentType (which it requires)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Optional, 1-255 printable characters, made once per user action and "
        "sent again on every retry of it. The same key with the same input returns the "
        "notification created the first time (replayed) and creates nothing; with other "
        "input it is refused (idempotency_conflict). Keys are per user and remembered for "
        "SMS_IDEMPOTENCY_TTL seconds (default one day).",
    )

    category: NotificationCategory = strawberry.field(
        default=NotificationCategory.TRANSACTIONAL,
        description="MARKETING is held during the recipient's quiet hours (SMS_QUIET_HOURS, "
        "in their local time); TRANSACTIONAL never is.",
    )
    recipient_time_zone: str | None = strawberry.field(
        default=None,
        description="The recipient's IANA time zone (e.g. America/New_York) for quiet "
        "hours; default: every zone of the number (code invalid_time_zone if unknown).",
    )

    def to_request(self) -> services.SmsNotificationRequest:
        return services.SmsNotificationRequest(
            title=self.title,
            body=self.body,
            to_phone_number=self.to_phone_number,
            url=self.url or "",
            user_id=self.user_id,
            publish_datetime=self.publish_datetime,
            priority=self.priority,
            content_type=self.content_type,
            object_id=self.object_id,
            idempotency_key=self.idempotency_key,
            category=self.category,
            recipient_time_zone=self.recipient_time_zone,
        )


# -------- mutations ---------------------------------------------------------------------

REPLAYED_MESSAGE = (
    "This idempotency key was used before with the same input: this is the notification "
    "created then, as it is now; nothing new was created."
)
OPTED_OUT_MESSAGE = (
    "This number has opted out of SMS (replied STOP): the notification was created but "
    "will fail instead of being sent unless the number opts back in."
)


@strawberry.type
class CreateSmsNotificationPayload:
    notification: Notification | None = strawberry.field(
        description="The created notification with its sms; null when errors is not empty."
    )
    errors: list[FieldError] = strawberry.field(
        description="Why nothing was created; empty on success."
    )
    warnings: list[FieldError] = strawberry.field(
        description="Created, but note this (code opted_out: the number replied STOP; "
        "code replayed: returned for a repeated idempotencyKey, not created now)."
    )
    replayed: bool = strawberry.field(
        default=False,
        description="True when idempotencyKey was seen before: notification is the one "
        "created then (with its current status) and nothing was created now.",
    )


@strawberry.type
class CreateSmsNotificationsPayload:
    notifications: list[Notification] = strawberry.field(
        description="The created notifications in input order; empty when errors is not empty."
    )
    errors: list[FieldError] = strawberry.field(
        description="Every problem, each with the index of its input item. Nothing is created "
        "unless all items are valid."
    )
    warnings: list[FieldError] = strawberry.field(
        description="Created, but note these (codes opted_out and replayed, as in "
        "createSmsNotification), with the item's index."
    )


@strawberry.type
class CancelNotificationPayload:
    notification: Notification | None = strawberry.field(
        description="The notification as it is now (also when it could not be canceled)."
    )
    errors: list[FieldError] = strawberry.field(
        description="Why it was not canceled (not_found, not_pending); empty on success."
    )


def _created(created: services.CreatedSmsNotification) -> Notification:
    """The created notification, with its opted-out flag known (no query to resolve it)."""
    setattr(created.notification.sms, OPTED_OUT_ANNOTATION, created.opted_out)
    return created.notification  # type: ignore[return-value]


def _warnings(
    created: services.CreatedSmsNotification, index: int | None = None
) -> list[FieldError]:
    warnings = []
    if created.replayed:
        warnings.append(
            FieldError(
                field="idempotencyKey", message=REPLAYED_MESSAGE, code="replayed", index=index
            )
        )
    if created.opted_out:
        warnings.append(
            FieldError(
                field="toPhoneNumber", message=OPTED_OUT_MESSAGE, code="opted_out", index=index
            )
        )
    return warnings


def _caller_id(info: Info) -> int | None:
    """Who creates: recorded as the creator, and the scope of idempotency keys (the
    mutations require a logged-in user)."""
    return get_current_user(info).pk


@strawberry.type
class NotificationMutation:
    @strawberry_django.mutation(
        extensions=[permission_required(ADD_PERMISSION), user_rate_limit(), segment_quota()],
        description="Create one SMS notification: both rows or nothing.",
    )
    def create_sms_notification(
        self, info: Info, input: CreateSmsNotificationInput
    ) -> CreateSmsNotificationPayload:
        try:
            created = services.create_sms_notification(
                input.to_request(), caller_id=_caller_id(info)
            )
        except ValidationError as exc:
            return CreateSmsNotificationPayload(
                notification=None, errors=field_errors(exc), warnings=[]
            )
        return CreateSmsNotificationPayload(
            notification=_created(created),
            errors=[],
            warnings=_warnings(created),
            replayed=created.replayed,
        )

    @strawberry_django.mutation(
        extensions=[permission_required(ADD_PERMISSION), user_rate_limit(), segment_quota()],
        description=(
            f"Create up to {services.MAX_BULK_NOTIFICATIONS} SMS notifications in one "
            "transaction: all of them, or none when any item is invalid."
        ),
    )
    def create_sms_notifications(
        self, info: Info, input: list[CreateSmsNotificationInput]
    ) -> CreateSmsNotificationsPayload:
        try:
            created = services.create_sms_notifications(
                [item.to_request() for item in input], caller_id=_caller_id(info)
            )
        except ValidationError as exc:
            return CreateSmsNotificationsPayload(
                notifications=[], errors=field_errors(exc), warnings=[]
            )
        except services.BulkValidationError as exc:
            return CreateSmsNotificationsPayload(
                notifications=[],
                errors=[
                    error
                    for index, item_error in exc.errors.items()
                    for error in field_errors(item_error, index=index)
                ],
                warnings=[],
            )
        return CreateSmsNotificationsPayload(
            notifications=[_created(item) for item in created],
            errors=[],
            warnings=[
                warning for index, item in enumerate(created) for warning in _warnings(item, index)
            ],
        )

    @strawberry_django.mutation(
        extensions=[permission_required(CHANGE_PERMISSION)],
        description="Cancel a notification that has not been picked up for sending yet.",
    )
    def cancel_notification(self, info: Info, id: strawberry.ID) -> CancelNotificationPayload:
        try:
            # Only what the caller may read: anything else answers like a missing id
            # (same error, nothing changed), so this cannot read or probe notifications.
            notification = changes.cancel_notification(
                id, queryset=visible_notifications(NotificationModel.objects.all(), info)
            )
        except NotificationModel.DoesNotExist:
            return CancelNotificationPayload(
                notification=None,
                errors=[
                    FieldError(
                        field="id", message=f"There is no notification {id}.", code="not_found"
                    )
                ],
            )
        except changes.NotificationNotCancelable as exc:
            return CancelNotificationPayload(
                notification=exc.notification,  # type: ignore[arg-type]
                errors=[FieldError(field="id", message=exc.messages[0], code="not_pending")],
            )
        return CancelNotificationPayload(notification=notification, errors=[])  # type: ignore[arg-type]


# -------- resend ------------------------------------------------------------------------


@strawberry.type
class ResendNotificationPayload:
    notification: Notification | None = strawberry.field(
        description="The notification, back in the queue (pending); null when not found."
    )
    errors: list[FieldError] = strawberry.field(
        description="Why it was not resent (not_found, not_resendable); empty on success."
    )


@strawberry.type
class ResendMutation:
    @strawberry_django.mutation(
        extensions=[permission_required(CHANGE_PERMISSION), user_rate_limit()],
        description=(
            "Send again an SMS whose status is unknown (the request may or may not have "
            "reached Twilio; reconciliation settles it from Twilio's own records and resends "
            "it by itself only when Twilio provably never had it) or failed. It goes back "
            "to pending as a fresh attempt."
        ),
    )
    def resend_notification(self, info: Info, id: strawberry.ID) -> ResendNotificationPayload:
        # Only what the caller may read: anything else answers like a missing id.
        visible = visible_notifications(NotificationModel.objects.all(), info)
        try:
            notification = resend_notification(id, queryset=visible)
        except NotificationNotFound as exc:
            return ResendNotificationPayload(
                notification=None,
                errors=[FieldError(field="id", message=str(exc), code="not_found")],
            )
        except ResendError as exc:
            return ResendNotificationPayload(
                notification=visible.filter(pk=id).first(),  # type: ignore[arg-type]
                errors=[FieldError(field="id", message=str(exc), code="not_resendable")],
            )
        return ResendNotificationPayload(notification=notification, errors=[])  # type: ignore[arg-type]
