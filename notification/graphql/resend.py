"""``resendNotification(id)``: staff resend of an SMS whose fate is unknown (or failed).

The send job never resends an ``unknown`` message by itself (it may already be
at Twilio); a person with ``notification.change_notification`` decides. Merged
into ``Mutation`` by ``schema/schema.py`` (``MUTATION_TYPES``). The rules live in
``notification.operations.changes`` and are shared with the admin action.
"""

import strawberry
import strawberry_django
from strawberry.types import Info

from notification.graphql.field_errors import FieldError
from notification.graphql.permissions import (
    CHANGE_PERMISSION,
    permission_required,
    visible_notifications,
)
from notification.graphql.throttles import user_rate_limit
from notification.graphql.types import Notification
from notification.models import Notification as NotificationModel
from notification.operations.changes import NotificationNotFound, ResendError, resend_notification


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
