"""GraphQL object types: notifications, their SMS, users, segment counts."""

import datetime
from decimal import Decimal

import strawberry
import strawberry_django
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef, QuerySet
from strawberry import auto
from strawberry.types import Info
from strawberry_django.fields.types import field_type_map

from notification import models
from notification.graphql.execution import PlainAttributeField
from notification.graphql.execution import field as plain_field
from notification.graphql.filters import (
    DeliveryStatus,
    NotificationCategory,
    NotificationFilter,
    NotificationPriority,
    NotificationStatus,
    NotificationType,
    SmsEncoding,
    visible_notifications,
)
from notification.models import SmsOptOut
from notification.values import SegmentInfo

# The link's field is a URLField with the notification's own rule (strawberry-django
# maps field classes exactly, not by subclass): the same String as any URLField.
field_type_map.setdefault(models.WebURLField, str)

#: Attribute carrying the opted-out flag (set by the optimizer's annotation or a mutation).
OPTED_OUT_ANNOTATION = "_opted_out"


@strawberry_django.type(get_user_model(), name="User", field_cls=PlainAttributeField)
class User:
    id: auto
    username: auto
    email: auto
    first_name: auto
    last_name: auto
    is_staff: auto


@strawberry_django.type(
    models.SmsNotification,
    name="SmsNotification",
    field_cls=PlainAttributeField,
    description="How a notification travels by SMS, and what Twilio said about it.",
)
class SmsNotification:
    id: auto
    to_phone_number: str = plain_field(description="E.164, e.g. +14155550100.")
    delivery_status: DeliveryStatus
    segments: int = plain_field(
        description="Segments Twilio bills and paces this message by (counted on save)."
    )
    encoding: SmsEncoding
    error_code: auto = plain_field(description="Twilio's error code, if any.")
    error_message: auto
    twilio_sid: auto
    sender: auto = plain_field(
        description="The From number or Messaging Service SID it was sent with."
    )
    recipient_time_zone: str = plain_field(
        description="The IANA zone given at create for quiet hours; empty: the number's zones."
    )
    price_unit: str = plain_field(
        description="The currency of price (ISO 4217), once Twilio reported it."
    )
    attempts: auto
    # Public name kept from before the model's timestamps were all named ``_datetime``.
    next_attempt_at: auto = plain_field(field_name="next_attempt_datetime")
    sent_datetime: auto
    delivered_datetime: auto
    status_updated_datetime: auto

    @strawberry_django.field(
        only=["estimated_price"],
        description="What sending was estimated to cost (decimal string, in the price "
        "unit of SMS_PRICE_UNIT or Twilio's), recorded when a worker took it; counts "
        "towards the spend limits.",
    )
    def estimated_price(self, root: models.SmsNotification) -> str | None:
        return None if root.estimated_price is None else str(root.estimated_price)

    @strawberry_django.field(
        only=["price"],
        description="The price Twilio reported (decimal string, positive, in priceUnit), "
        "once known.",
    )
    def price(self, root: models.SmsNotification) -> str | None:
        return None if root.price is None else str(root.price)

    @strawberry_django.field(
        annotate={
            OPTED_OUT_ANNOTATION: Exists(
                SmsOptOut.objects.filter(phone_number=OuterRef("to_phone_number"))
            )
        },
        only=["to_phone_number"],
        description="The number replied STOP (or was opted out): the send job fails the "
        "notification instead of sending it.",
    )
    def opted_out(self, root: models.SmsNotification) -> bool:
        # Lists get it from the optimizer's annotation (no query per row); objects made
        # or changed by a mutation may carry it already, else one lookup.
        known = getattr(root, OPTED_OUT_ANNOTATION, None)
        if known is not None:
            return known
        return SmsOptOut.objects.filter(phone_number=root.to_phone_number).exists()


@strawberry_django.type(
    models.Notification,
    name="Notification",
    field_cls=PlainAttributeField,
    filters=NotificationFilter,
    pagination=True,
)
class Notification:
    id: auto
    title: auto
    body: auto
    url: auto
    type: NotificationType
    status: NotificationStatus
    status_message: auto
    priority: NotificationPriority
    category: NotificationCategory
    user_id: strawberry.ID | None = plain_field(
        only=["user_id"],
        description="The recipient user's id, if the notification is addressed to a user.",
    )
    created_by_id: strawberry.ID | None = plain_field(
        only=["created_by_id"],
        description="Who created it (through the API or the admin); null for rows made "
        "with the ORM.",
    )
    object_id: strawberry.ID | None
    publish_datetime: datetime.datetime = plain_field(description="Not sent before.")
    sent_datetime: auto
    created_datetime: auto
    updated_datetime: auto
    sms: SmsNotification | None

    @strawberry_django.field(
        only=["content_type_id"],
        description='What the notification is about, as "app_label.model".',
    )
    def content_type(self, root: models.Notification) -> str | None:
        if root.content_type_id is None:
            return None
        # get_for_id is cached per process: no query per row.
        content_type = ContentType.objects.get_for_id(root.content_type_id)
        return f"{content_type.app_label}.{content_type.model}"

    @classmethod
    def get_queryset(
        cls, queryset: QuerySet[models.Notification], info: Info, **kwargs: object
    ) -> QuerySet[models.Notification]:
        return visible_notifications(queryset, info)


@strawberry.type(description="How a message body would be sent: for a live counter.")
class SmsSegments:
    encoding: SmsEncoding
    segments: int
    characters: int = strawberry.field(
        description="Length in encoding units: septets (GSM7) or UTF-16 code units (UCS2)."
    )
    characters_per_segment: int
    estimated_price: str | None = strawberry.field(
        default=None,
        description="segments x the price of one segment to toPhoneNumber's country "
        "(decimal string); null without toPhoneNumber or when the price is unknown.",
    )
    price_unit: str | None = strawberry.field(
        default=None, description="The currency of estimatedPrice (ISO 4217, e.g. USD)."
    )

    @classmethod
    def from_info(
        cls, info: SegmentInfo, price: tuple[Decimal, str] | None = None
    ) -> "SmsSegments":
        return cls(
            encoding=models.EncodingChoices(info.encoding.value),
            segments=info.segments,
            characters=info.characters,
            characters_per_segment=info.characters_per_segment,
            estimated_price=str(price[0]) if price else None,
            price_unit=price[1] if price else None,
        )
