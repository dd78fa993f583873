"""Filters for ``notifications(filters: ...)`` (strawberry-django lookups, AND/OR/NOT)."""

import strawberry
import strawberry_django
from strawberry_django import BaseFilterLookup, DatetimeFilterLookup, StrFilterLookup

from notification import models
from schema.enums import DeliveryStatus, NotificationPriority, NotificationStatus, NotificationType


@strawberry_django.filter_type(models.SmsNotification, name="SmsNotificationFilter")
class SmsNotificationFilter:
    delivery_status: BaseFilterLookup[DeliveryStatus] | None
    to_phone_number: StrFilterLookup | None
    error_code: BaseFilterLookup[int] | None


@strawberry_django.filter_type(models.Notification, name="NotificationFilter")
class NotificationFilter:
    id: BaseFilterLookup[strawberry.ID] | None
    status: BaseFilterLookup[NotificationStatus] | None
    type: BaseFilterLookup[NotificationType] | None
    priority: BaseFilterLookup[NotificationPriority] | None
    user_id: BaseFilterLookup[strawberry.ID] | None
    title: StrFilterLookup | None
    publish_datetime: DatetimeFilterLookup | None
    created_datetime: DatetimeFilterLookup | None
    sms: SmsNotificationFilter | None
