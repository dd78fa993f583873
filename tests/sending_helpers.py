"""Helpers for the sending tests: rows made exactly as a Django user makes them."""

from datetime import datetime

from django.utils import timezone

from notification.models import Notification, NotificationPriorityChoices, SmsNotification


def make_sms(
    to: str = "+14155550100",
    body: str = "Hello",
    *,
    priority: int = NotificationPriorityChoices.NORMAL,
    publish: datetime | None = None,
    title: str = "Test",
) -> SmsNotification:
    """The seed guide's way: a ``Notification``, then ``SmsNotification.objects.create``."""
    notification = Notification.objects.create(
        title=title,
        body=body,
        priority=priority,
        publish_datetime=publish or timezone.now() - timezone.timedelta(seconds=1),
    )
    return SmsNotification.objects.create(notification=notification, to_phone_number=to)


def reload(sms: SmsNotification) -> SmsNotification:
    return SmsNotification.objects.select_related("notification").get(pk=sms.pk)


def gsm_body(segments: int, tag: str = "") -> str:
    """A GSM-7 body of exactly ``segments`` segments (153 characters each once split)."""
    if segments == 1:
        return (tag + " one segment")[:160]
    return (tag + " ").ljust(153 * segments, "x")
