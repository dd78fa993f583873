"""Mutation inputs."""

import datetime

import strawberry

from notification.graphql.enums import NotificationCategory, NotificationPriority
from notification.operations import creation as services


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
