"""The remembered idempotency keys: one row per (caller, key), enforced by the database.

The unique constraint is what makes concurrent retries safe: two requests that both
found no row both try to insert one, and the database lets exactly one commit. A
check-then-insert in Python alone would let both through.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

#: The longest key a client may send (and the column's width).
MAX_KEY_LENGTH = 255
#: A SHA-256 digest in hex.
FINGERPRINT_LENGTH = 64


class IdempotencyKey(models.Model):
    """A caller's key, the fingerprint of the input it was first used with, and the
    notification that input created."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Who sent the key: keys are scoped per caller.",
    )
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = models.CharField(
        max_length=FINGERPRINT_LENGTH,
        help_text="SHA-256 of the normalised input the key was first used with.",
    )
    notification = models.ForeignKey(
        "notification.Notification",
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
