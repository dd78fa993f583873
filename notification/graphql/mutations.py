"""Mutations: log in and out, create SMS notifications (one or many), cancel.

Each group is its own class; ``schema/schema.py`` merges them (and any other module's
mutation class) into the single ``Mutation`` type with ``strawberry.tools.merge_types``.
"""

import strawberry
import strawberry_django
from django.core.exceptions import ValidationError
from strawberry.types import Info
from strawberry_django.auth.utils import get_current_user

from notification.graphql.field_errors import FieldError, field_errors
from notification.graphql.inputs import CreateSmsNotificationInput
from notification.graphql.permissions import (
    ADD_PERMISSION,
    CHANGE_PERMISSION,
    permission_required,
    visible_notifications,
)
from notification.graphql.types import OPTED_OUT_ANNOTATION, Notification
from notification.models import Notification as NotificationModel
from notification.operations import changes
from notification.operations import creation as services

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
        extensions=[permission_required(ADD_PERMISSION)],
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
        extensions=[permission_required(ADD_PERMISSION)],
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
