"""Every DateTime the API returns carries a UTC offset (JavaScript reads a bare one as local).

Subscription events are checked where they are made: ``test_webhooks_publish`` (the
status callback's raw-SQL path) and ``test_live_e2e`` (events through uvicorn).
"""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from notification.models import Notification, SmsNotification

pytestmark = pytest.mark.db_vendor

QUERY = """
query One($id: ID!) {
  notification(id: $id) {
    publishDatetime createdDatetime updatedDatetime sentDatetime
    sms { sentDatetime deliveredDatetime statusUpdatedDatetime nextAttemptAt }
  }
}
"""


def test_query_times_have_a_utc_offset(graphql, staff_user):
    now = timezone.now()
    notification = Notification.objects.create(
        title="t", body="b", status="delivered", sent_datetime=now
    )
    SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        sent_datetime=now,
        delivered_datetime=now,
        status_updated_datetime=now,
        next_attempt_datetime=now,
    )
    result = graphql(staff_user).data(QUERY, {"id": notification.pk})["notification"]
    sms = result.pop("sms")
    times = {**result, **{f"sms.{name}": value for name, value in sms.items()}}
    assert len(times) == 8 and all(times.values()), times
    for name, value in times.items():
        assert datetime.fromisoformat(value).utcoffset() == timedelta(0), (name, value)
