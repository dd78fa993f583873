"""Notification models.

A ``Notification`` is what the user is told; an ``SmsNotification`` is how it
travels by SMS and what Twilio said about it. They are created together (see
``notification.create.creation``) but plain ORM creation works too: the send job picks
up any pending notification that has an ``sms`` row, however it was made.
"""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notification.model_loading import load_from_db
from notification.validators import (
    BODY_REQUIRED,
    TITLE_REQUIRED,
    TITLE_TOO_LONG,
    URL_MAX_LENGTH,
    validate_e164_number,
    validate_notification_url,
    validate_sms_body,
    validate_sms_recipient,
    validate_title,
)
from notification.values import (
    E164_MAX_LENGTH,
    looks_like_e164,
    normalize_phone_number,
    segment_fields,
)


class WebURLField(models.URLField):
    """A URLField whose one rule is the notification link's (http(s) only, storable,
    ``URL_MAX_LENGTH``), checked in that order so the first error names the real
    reason: Django's own ``URLValidator`` (ftp too, and "invalid" for any over-long
    or unstorable address) is not run beside it."""

    default_validators = [validate_notification_url]


class NotificationTypeChoices(models.TextChoices):
    """The channel. SMS is the only one this app sends: a type nothing delivers would
    only let a notification be created that silently never goes anywhere."""

    SMS = "sms", "SMS"


class NotificationStatusChoices(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    # The request may or may not have reached Twilio (timeout, dropped
    # connection, crashed worker). Settled from Twilio's evidence (its callbacks,
    # its Messages API: notification.reconciliation); resent by itself only when
    # Twilio provably never had it, otherwise staff decide.
    UNKNOWN = "unknown", "Unknown"


class NotificationPriorityChoices(models.IntegerChoices):
    """Stored as integers so "high first" is an index-ordered ``-priority``."""

    LOW = 10, "Low"
    NORMAL = 20, "Normal"
    HIGH = 30, "High"


class NotificationCategoryChoices(models.TextChoices):
    """Why the message is sent: the law treats the two differently.

    Quiet hours (47 CFR 64.1200(c)(1)) restrict telephone solicitations, not
    receipts, codes and alerts, so only ``MARKETING`` is ever held for them
    (``notification.guardrails.places``).
    """

    TRANSACTIONAL = "transactional", "Transactional"
    MARKETING = "marketing", "Marketing"


class DeliveryStatusChoices(models.TextChoices):
    """Twilio's message statuses; blank until a create request succeeds."""

    NOT_SUBMITTED = "", "Not submitted"
    QUEUED = "queued", "Queued"
    ACCEPTED = "accepted", "Accepted"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    READ = "read", "Read"
    PARTIALLY_DELIVERED = "partially_delivered", "Partially delivered"
    CANCELED = "canceled", "Canceled"


class EncodingChoices(models.TextChoices):
    GSM7 = "gsm7", "GSM-7"
    UCS2 = "ucs2", "UCS-2"


class OptOutSourceChoices(models.TextChoices):
    INBOUND_STOP = "inbound_stop", "Inbound STOP"
    TWILIO_21610 = "twilio_21610", "Twilio error 21610"
    ADMIN = "admin", "Admin"


class Notification(models.Model):
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    content_object = GenericForeignKey("content_type", "object_id")

    title = models.CharField(
        max_length=255,
        validators=[validate_title],
        error_messages={"blank": TITLE_REQUIRED, "max_length": TITLE_TOO_LONG},
    )
    body = models.TextField(validators=[validate_sms_body], error_messages={"blank": BODY_REQUIRED})
    url = WebURLField(max_length=URL_MAX_LENGTH, blank=True)
    type = models.CharField(
        max_length=16, choices=NotificationTypeChoices.choices, default=NotificationTypeChoices.SMS
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        help_text="The recipient; the notification stays (for audit) if the user is deleted.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_notifications",
        help_text="Who created it through the API or the admin; empty for rows made with the "
        "ORM. Creators may read and watch what they created.",
    )
    publish_datetime = models.DateTimeField(default=timezone.now, help_text="Not sent before this.")
    status = models.CharField(
        max_length=16,
        choices=NotificationStatusChoices.choices,
        default=NotificationStatusChoices.PENDING,
    )
    status_message = models.TextField(blank=True)
    priority = models.PositiveSmallIntegerField(
        choices=NotificationPriorityChoices.choices,
        default=NotificationPriorityChoices.NORMAL,
        error_messages={"invalid_choice": "%(value)r is not a valid priority."},
    )
    category = models.CharField(
        max_length=16,
        choices=NotificationCategoryChoices.choices,
        default=NotificationCategoryChoices.TRANSACTIONAL,
        error_messages={"invalid_choice": "%(value)r is not a valid category."},
        help_text="Marketing messages are held during the recipient's quiet hours "
        "(SMS_QUIET_HOURS); transactional ones never are.",
    )
    sent_datetime = models.DateTimeField(null=True, blank=True)
    created_datetime = models.DateTimeField(auto_now_add=True)
    updated_datetime = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_datetime", "-id"]
        indexes = [
            # The send job: due pending notifications, high priority first.
            models.Index(
                fields=["-priority", "publish_datetime", "id"],
                condition=Q(status="pending"),
                name="notification_due_pending_idx",
            ),
            # A user's inbox, newest first.
            models.Index(fields=["user", "-created_datetime"], name="notification_user_idx"),
            models.Index(fields=["status"], name="notification_status_idx"),
            models.Index(fields=["content_type", "object_id"], name="notification_object_idx"),
        ]

    #: Rows load without ``__init__``'s per-field walk (``notification.model_loading``).
    from_db = classmethod(load_from_db)

    def __str__(self) -> str:
        return f"{self.get_type_display()}: {self.title}"

    def clean(self) -> None:
        """An object id names a row of the content type's model: without one it
        points at nothing (a content type alone is allowed: a kind of thing)."""
        if self.object_id is not None and self.content_type_id is None:
            raise ValidationError(
                {
                    "object_id": ValidationError(
                        "An object id needs a content type.", code="requires_content_type"
                    )
                }
            )


class SmsNotification(models.Model):
    notification = models.OneToOneField(Notification, on_delete=models.CASCADE, related_name="sms")
    from_db = classmethod(load_from_db)  # as Notification's
    to_phone_number = models.CharField(
        max_length=E164_MAX_LENGTH, validators=[validate_sms_recipient], help_text="E.164"
    )

    twilio_sid = models.CharField(max_length=64, unique=True, null=True, blank=True)
    sender = models.CharField(
        max_length=64,
        blank=True,
        help_text="The From number or Messaging Service SID the message was sent with.",
    )
    delivery_status = models.CharField(
        max_length=24, choices=DeliveryStatusChoices.choices, blank=True, default=""
    )
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(default=0)
    encoding = models.CharField(
        max_length=8, choices=EncodingChoices.choices, default=EncodingChoices.GSM7
    )
    recipient_time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA time zone of the recipient for quiet hours; empty: the zones of "
        "the number (phonenumbers.timezone).",
    )
    estimated_price = models.DecimalField(
        max_digits=12,
        decimal_places=5,
        null=True,
        blank=True,
        help_text="What the message was expected to cost (segments x the price per "
        "segment), set when a worker claims it; counts towards the spend limits.",
    )
    priced_datetime = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When estimated_price was counted: the spend period the message belongs to.",
    )
    price = models.DecimalField(
        max_digits=12,
        decimal_places=5,
        null=True,
        blank=True,
        help_text="The price Twilio reported (positive, in price_unit), once it is known.",
    )
    price_unit = models.CharField(max_length=8, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_datetime = models.DateTimeField(null=True, blank=True)
    claimed_datetime = models.DateTimeField(
        null=True, blank=True, help_text="When a worker claimed the row for a batch."
    )
    claim_token = models.CharField(max_length=64, blank=True)
    send_started_datetime = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When the batch holding this row started dispatching; which requests really "
            "left is in the batch's Redis dispatch log (notification.send.dispatch)."
        ),
    )
    sent_datetime = models.DateTimeField(null=True, blank=True)
    delivered_datetime = models.DateTimeField(null=True, blank=True)
    status_updated_datetime = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["to_phone_number"], name="sms_to_phone_idx"),
            models.Index(
                fields=["claimed_datetime"],
                condition=Q(claimed_datetime__isnull=False),
                name="sms_claimed_idx",
            ),
            models.Index(fields=["sender", "delivery_status"], name="sms_sender_status_idx"),
            # The queue estimate (send.wake): a sender's hand-offs of the validity
            # window, at every claim, without reading the sender's older history.
            models.Index(fields=["sender", "sent_datetime"], name="sms_sender_sent_idx"),
            # A batch's rows by its claim token (marking them started, moving their
            # notifications, guarding the result write): without it every batch read
            # the whole table three times.
            models.Index(fields=["claim_token"], name="sms_claim_token_idx"),
            # The spend limits: one sum over the rows priced in the current period.
            models.Index(
                fields=["priced_datetime"],
                condition=Q(priced_datetime__isnull=False),
                name="sms_priced_idx",
            ),
            # /metrics (notification.ops.metrics): the few rows waiting for a retry,
            # without reading the whole table.
            models.Index(
                fields=["next_attempt_datetime"],
                condition=Q(next_attempt_datetime__isnull=False),
                name="sms_retry_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"SMS to {self.to_phone_number} ({self.delivery_status or 'not submitted'})"

    def save(self, *args, **kwargs) -> None:
        """Writes what it is given; validating is ``full_clean()``'s (the API and the
        admin call it). Two conversions keep ORM-made rows like the API's, so the send
        job treats both alike: a number written nationally (the README's ORM example)
        becomes E.164 through the one conversion the forms and the API use (which
        refuses what it cannot convert), and the segments are counted from the body.
        """
        if self.to_phone_number and not looks_like_e164(self.to_phone_number):
            self.to_phone_number = normalize_phone_number(self.to_phone_number)
        if self.notification_id is not None and not self.twilio_sid:
            self.refresh_segments()
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "segments", "encoding"}
        super().save(*args, **kwargs)

    def refresh_segments(self) -> None:
        for name, value in segment_fields(self.notification.body).items():
            setattr(self, name, value)


class SmsOptOut(models.Model):
    """A number that told us (or Twilio) to stop. Sends to it never reach Twilio."""

    phone_number = models.CharField(
        max_length=E164_MAX_LENGTH, unique=True, validators=[validate_e164_number]
    )
    source = models.CharField(max_length=16, choices=OptOutSourceChoices.choices)
    created_datetime = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "SMS opt-out"

    def __str__(self) -> str:
        return f"{self.phone_number} ({self.get_source_display()})"


class IdempotencyKey(models.Model):
    """A caller's idempotency key, the fingerprint of the input it was first used with,
    and the notification that input created.

    The unique constraint is what makes concurrent retries safe: two requests that both
    found no row both try to insert one, and the database lets exactly one commit. A
    check-then-insert in Python alone would let both through (the rules around it are in
    ``notification.create.idempotency``).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Who sent the key: keys are scoped per caller.",
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(
        max_length=64,  # a SHA-256 digest in hex
        help_text="SHA-256 of the normalised input the key was first used with.",
    )
    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Created by the first request; deleting it forgets the key.",
    )
    created_datetime = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user"),
        ]
        indexes = [
            # The expiry sweep: one range DELETE.
            models.Index(fields=["created_datetime"], name="idempotency_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key} (user {self.user_id})"


def max_length(model: type[models.Model], field_name: str) -> int:
    """The width of a text column, for validation that must match it (one source: the model)."""
    length = getattr(model._meta.get_field(field_name), "max_length", None)
    if length is None:
        raise TypeError(f"{model.__name__}.{field_name} has no max_length")
    return length
