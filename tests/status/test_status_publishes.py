"""Every way a status changes reaches subscribers, not only the worker's and the webhook's.

Cancel (GraphQL and the admin action), staff resend (GraphQL and the admin action)
and crash recovery each change a notification's status; a subscriber watching it
(its notification group on the real Redis channel layer, as the websocket
consumer listens) must be told, after the change committed.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.batch import recover_stale_claims
from notification.status.events import notification_group, user_group
from tests.support.layer_helpers import listen, receive_one
from tests.support.sending_helpers import make_sms

pytestmark = pytest.mark.django_db(transaction=True)

Status = NotificationStatusChoices
NOTIFICATION_CHANGELIST = reverse("admin:notification_notification_changelist")

CANCEL = """
mutation Cancel($id: ID!) {
  cancelNotification(id: $id) { notification { status } errors { code } }
}
"""
RESEND = """
mutation Resend($id: ID!) {
  resendNotification(id: $id) { notification { status } errors { code } }
}
"""


def watch(sms: SmsNotification) -> str:
    """A channel in the notification's group: what a ``smsStatus`` subscriber listens on."""
    return listen([notification_group(sms.notification_id)])


def make_unknown(body: str = "did it go?") -> SmsNotification:
    sms = make_sms(body=body)
    Notification.objects.filter(pk=sms.notification_id).update(status=Status.UNKNOWN)
    return sms


def assert_told(channel: str, sms: SmsNotification, status: str) -> None:
    message = receive_one(channel)
    assert (message["notification_id"], message["status"]) == (str(sms.notification_id), status)


def test_graphql_cancel_tells_the_subscriber(graphql, staff_user):
    sms = make_sms()
    channel = watch(sms)
    result = graphql(staff_user).data(CANCEL, {"id": str(sms.notification_id)})
    assert result["cancelNotification"]["errors"] == []
    assert_told(channel, sms, Status.CANCELED)


def test_graphql_resend_tells_the_subscriber(graphql, staff_user):
    sms = make_unknown()
    channel = watch(sms)
    result = graphql(staff_user).data(RESEND, {"id": str(sms.notification_id)})
    assert result["resendNotification"]["errors"] == []
    assert_told(channel, sms, Status.PENDING)


def test_admin_cancel_action_tells_the_subscriber(admin_client):
    sms = make_sms()
    channel = watch(sms)
    admin_client.post(
        NOTIFICATION_CHANGELIST,
        {"action": "cancel_pending_notifications", "_selected_action": [sms.notification_id]},
    )
    assert_told(channel, sms, Status.CANCELED)


def test_admin_resend_action_tells_the_subscriber(admin_client):
    sms = make_unknown()
    channel = watch(sms)
    admin_client.post(
        NOTIFICATION_CHANGELIST, {"action": "resend_sms", "_selected_action": [sms.notification_id]}
    )
    assert_told(channel, sms, Status.PENDING)


def test_recovery_of_a_dead_workers_claims_tells_the_subscribers(django_user_model):
    """Back to pending (never started) and unknown (started) are both announced, to the
    notification's group and to its recipient's (``myNotifications``)."""
    owner = django_user_model.objects.create_user("owner")
    long_ago = timezone.now() - timedelta(hours=1)
    never_started, started = make_sms(body="never left"), make_sms(body="maybe left")
    for sms, send_started_datetime in ((never_started, None), (started, long_ago)):
        SmsNotification.objects.filter(pk=sms.pk).update(
            claimed_datetime=long_ago,
            claim_token="dead-worker",
            send_started_datetime=send_started_datetime,
        )
        Notification.objects.filter(pk=sms.notification_id).update(
            status=Status.PROCESSING, user=owner
        )
    channels = {sms.pk: watch(sms) for sms in (never_started, started)}
    owners_channel = listen([user_group(owner.pk)])

    counts = recover_stale_claims(timezone.now(), claim_timeout_seconds=60)

    assert (counts.requeued, counts.unknown) == (1, 1)
    assert_told(channels[never_started.pk], never_started, Status.PENDING)
    assert_told(channels[started.pk], started, Status.UNKNOWN)
    told_owner = {receive_one(owners_channel)["status"] for _ in range(2)}
    assert told_owner == {Status.PENDING, Status.UNKNOWN}
