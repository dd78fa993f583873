"""Keys are remembered for ``SMS_IDEMPOTENCY_TTL`` seconds, then forgotten.

The age is judged against the current setting (not a stored expiry time), so shortening
or lengthening the TTL applies to keys already remembered. A key past its TTL counts as
unknown even before the sweep has deleted it: ``claims`` deletes it in the create
transaction and the key starts afresh.
"""

import datetime

from django.utils import timezone

from notification.conf import app_settings
from notification.models import IdempotencyKey


def expiry_cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    """Keys created before this instant are forgotten."""
    return (now or timezone.now()) - datetime.timedelta(seconds=app_settings.SMS_IDEMPOTENCY_TTL)


def forget_expired_keys(now: datetime.datetime | None = None) -> int:
    """Delete every expired key in one DELETE, however many there are; returns the count.

    Nothing references ``IdempotencyKey`` and it has no delete signals, so Django deletes
    the rows with a single query instead of loading them first.
    """
    deleted, _ = IdempotencyKey.objects.filter(created_datetime__lt=expiry_cutoff(now)).delete()
    return deleted
