"""GraphQL enums, made from the model's Django choices so the two can never drift."""

import strawberry

from notification import models

NotificationStatus = strawberry.enum(
    models.NotificationStatusChoices,
    name="NotificationStatus",
    description="Where a notification is in its life: pending until a worker claims it.",
)
NotificationType = strawberry.enum(
    models.NotificationTypeChoices, name="NotificationType", description="The channel."
)
NotificationPriority = strawberry.enum(
    models.NotificationPriorityChoices,
    name="NotificationPriority",
    description="Higher priorities are sent first within a batch.",
)
DeliveryStatus = strawberry.enum(
    models.DeliveryStatusChoices,
    name="DeliveryStatus",
    description="Twilio's message status; NOT_SUBMITTED until Twilio accepted the message.",
)
SmsEncoding = strawberry.enum(
    models.EncodingChoices,
    name="SmsEncoding",
    description="GSM7 fits 160 characters in one segment (153 when split), UCS2 70 (67).",
)
NotificationCategory = strawberry.enum(
    models.NotificationCategoryChoices,
    name="NotificationCategory",
    description="TRANSACTIONAL (receipts, codes, alerts) is never held by quiet hours; "
    "MARKETING waits for the recipient's quiet hours (SMS_QUIET_HOURS) to end.",
)
