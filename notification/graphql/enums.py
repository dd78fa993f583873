"""GraphQL enums, made from the model's Django choices so the two can never drift.

``strawberry.enum`` registers the choices class itself (it returns the same
class), so each name below is an alias of the model's choices: type checkers see
one type, and a model value is a valid GraphQL value without conversion.
"""

from typing import TypeAlias

import strawberry

from notification import models

NotificationStatus: TypeAlias = models.NotificationStatusChoices
strawberry.enum(
    NotificationStatus,
    name="NotificationStatus",
    description="Where a notification is in its life: pending until a worker claims it.",
)
NotificationType: TypeAlias = models.NotificationTypeChoices
strawberry.enum(NotificationType, name="NotificationType", description="The channel.")
NotificationPriority: TypeAlias = models.NotificationPriorityChoices
strawberry.enum(
    NotificationPriority,
    name="NotificationPriority",
    description="Higher priorities are sent first within a batch.",
)
DeliveryStatus: TypeAlias = models.DeliveryStatusChoices
strawberry.enum(
    DeliveryStatus,
    name="DeliveryStatus",
    description="Twilio's message status; NOT_SUBMITTED until Twilio accepted the message.",
)
SmsEncoding: TypeAlias = models.EncodingChoices
strawberry.enum(
    SmsEncoding,
    name="SmsEncoding",
    description="GSM7 fits 160 characters in one segment (153 when split), UCS2 70 (67).",
)
NotificationCategory: TypeAlias = models.NotificationCategoryChoices
strawberry.enum(
    NotificationCategory,
    name="NotificationCategory",
    description="TRANSACTIONAL (receipts, codes, alerts) is never held by quiet hours; "
    "MARKETING waits for the recipient's quiet hours (SMS_QUIET_HOURS) to end.",
)
