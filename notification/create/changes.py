"""Changing a notification after creation: cancel (while pending) and staff resend.

Resend is for an SMS whose fate is ``unknown`` (or that ``failed``).

``unknown`` means the request may have reached Twilio: the send job never
resends it by itself (at most once), so a person decides. Resending puts the
notification back in the queue as a fresh attempt: pending, no backoff, claim
and Twilio fields cleared. Used by the ``resendNotification`` GraphQL mutation
and the admin action; both get the same rules and the same error messages.

The reset runs in one transaction: the resendable rows are locked first
(``SELECT ... FOR UPDATE``; SQLite's IMMEDIATE transactions serialise writers),
then each table is updated once, so two staff clicking at once (or a resend
racing the send job) cannot queue it twice.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from notification.exceptions import SmsNotificationError
from notification.models import (
    Notification,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.send.wake import notify_if_urgent
from notification.status.events import notify_status_changed
from notification.values import parse_database_id

HIGH = NotificationPriorityChoices.HIGH

RESENDABLE_STATUSES = (NotificationStatusChoices.UNKNOWN, NotificationStatusChoices.FAILED)


class NotificationNotCancelable(SmsNotificationError, ValidationError):
    """The notification has left ``pending`` (a worker claimed it, or it is finished)."""

    def __init__(self, notification: Notification):
        self.notification = notification
        super().__init__(
            "Only pending notifications can be canceled; this one is %(status)s.",
            code="not_pending",
            params={"status": notification.status},
        )


def cancel_notification(
    notification_id: int | str,
    *,
    reason: str = "",
    queryset: models.QuerySet[Notification] | None = None,
) -> Notification:
    """Cancel a notification that is still ``pending``.

    A single conditional UPDATE (``WHERE status = 'pending'``) decides, so a send job
    claiming the row at the same moment either wins (and this raises
    ``NotificationNotCancelable``) or loses (and never sends it): never both.
    Raises ``Notification.DoesNotExist`` for an unknown (or impossible) id, and also
    for one outside ``queryset`` when given (the caller's visible notifications:
    what the caller may not see answers exactly like what does not exist).
    """
    message = reason or "Canceled before sending."
    parsed = parse_database_id(notification_id)
    if parsed is None:
        raise Notification.DoesNotExist(f"There is no notification {notification_id}.")
    notification_id = parsed
    if queryset is not None and not queryset.filter(pk=notification_id).exists():
        raise Notification.DoesNotExist(f"There is no notification {notification_id}.")
    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification_id, status=NotificationStatusChoices.PENDING
        ).update(
            status=NotificationStatusChoices.CANCELED,
            status_message=message,
            updated_datetime=timezone.now(),
        )
        notification = Notification.objects.select_related("sms").get(pk=notification_id)
        if not updated:
            raise NotificationNotCancelable(notification)
        transaction.on_commit(lambda: notify_status_changed([notification.pk]))
    return notification


class ResendError(SmsNotificationError, ValueError):
    """The notification cannot be resent; the message says why (safe to show staff)."""


class NotificationNotFound(ResendError):
    pass


def _resendable(ids: Iterable[int]):
    return Notification.objects.filter(
        pk__in=list(ids), status__in=RESENDABLE_STATUSES, sms__isnull=False
    )


def resend_notifications(notification_ids: Iterable[int]) -> list[int]:
    """Requeue every resendable notification among ``notification_ids``; return those ids."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(_resendable(notification_ids).select_for_update().values_list("pk", flat=True))
        if not ids:
            return []
        Notification.objects.filter(pk__in=ids, status__in=RESENDABLE_STATUSES).update(
            status=NotificationStatusChoices.PENDING,
            status_message="Resent by staff.",
            sent_datetime=None,
            updated_datetime=now,
        )
        SmsNotification.objects.filter(notification_id__in=ids).update(
            twilio_sid=None,
            delivery_status="",
            error_code=None,
            error_message="",
            attempts=0,
            next_attempt_datetime=None,
            claimed_datetime=None,
            claim_token="",
            send_started_datetime=None,
            sent_datetime=None,
            delivered_datetime=None,
            status_updated_datetime=None,
        )
        transaction.on_commit(lambda: notify_status_changed(ids))
        notify_if_urgent(list(Notification.objects.filter(pk__in=ids, priority=HIGH)))
    return ids


def resend_notification(
    notification_id: int | str, *, queryset: QuerySet[Notification] | None = None
) -> Notification:
    """Requeue one notification or raise ``ResendError`` saying why not.

    ``queryset`` (the caller's visible notifications) limits what may be resent:
    an id outside it answers exactly like one that does not exist, and nothing
    changes, so the error cannot be used to probe for ids or read content.
    """
    parsed = parse_database_id(notification_id)
    if parsed is None or (queryset is not None and not queryset.filter(pk=parsed).exists()):
        raise NotificationNotFound(f"There is no notification {notification_id}.")
    notification_id = parsed
    if not resend_notifications([notification_id]):
        notification = Notification.objects.filter(pk=notification_id).first()
        if notification is None:
            raise NotificationNotFound(f"There is no notification {notification_id}.")
        if not SmsNotification.objects.filter(notification_id=notification_id).exists():
            raise ResendError(f"Notification {notification_id} has no SMS to resend.")
        raise ResendError(
            f"Only notifications whose status is unknown or failed can be resent; "
            f"notification {notification_id} is {notification.status}."
        )
    return Notification.objects.select_related("sms").get(pk=notification_id)
