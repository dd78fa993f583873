"""Helpers for the sending tests (and ``bench/send.py``): rows made as a Django user makes
them, one by one or in bulk."""

from datetime import datetime, timedelta

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
        publish_datetime=publish or timezone.now() - timedelta(seconds=1),
    )
    return SmsNotification.objects.create(notification=notification, to_phone_number=to)


def reload(sms: SmsNotification) -> SmsNotification:
    return SmsNotification.objects.select_related("notification").get(pk=sms.pk)


def gsm_body(segments: int, tag: str = "") -> str:
    """A GSM-7 body of exactly ``segments`` segments (153 characters each once split)."""
    if segments == 1:
        return (tag + " one segment")[:160]
    return (tag + " ").ljust(153 * segments, "x")


def create_due_sms(count: int) -> None:
    """Bulk-create ``count`` due pairs, each with a unique body, as a bulk import would
    (``bulk_create`` skips ``save()``, so the segment count is given)."""
    publish = timezone.now() - timedelta(seconds=5)
    notifications = Notification.objects.bulk_create(
        Notification(title=f"n{i}", body=f"message {i}", publish_datetime=publish)
        for i in range(count)
    )
    SmsNotification.objects.bulk_create(
        SmsNotification(notification=n, to_phone_number=f"+1415555{i % 10000:04d}", segments=1)
        for i, n in enumerate(notifications)
    )
