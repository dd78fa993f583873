"""What a status callback publishes, and callbacks that arrive before their sid is stored.

Uses the session's real Redis channel layer (``redis_url`` fixture): the message a
websocket consumer would receive is read straight from the layer.
"""

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from django.contrib.auth import get_user_model
from django.test import Client

from notification.models import Notification, SmsNotification
from notification.send.results import announce_written
from notification.status.events import notification_group, user_group
from notification.status.publish_batches import publish_coalesced
from tests.support.layer_helpers import listen, receive_all
from tests.support.webhook_helpers import (
    STATUS_PATH,
    post_signed,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

SID = "SM" + "c" * 32

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def signed_webhooks(settings, redis):
    """Callbacks signed as the helpers sign; the view's pooled connections closed afterwards."""
    use_test_signing(settings)
    with short_lived_db_connections():
        yield settings


def make_sms(sid: str | None = SID, user=None) -> SmsNotification:
    notification = Notification.objects.create(title="t", body="b", status="sent", user=user)
    return SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=sid,
        delivery_status="queued" if sid else "",
    )


def test_callback_publishes_one_message_to_the_notification_and_user_groups(client: Client):
    user = get_user_model().objects.create_user("ann", password="pw")
    sms = make_sms(user=user)
    notification_channel = listen([notification_group(sms.notification_id)])
    user_channel = listen([user_group(user.pk)])

    response = post_signed(client, STATUS_PATH, status_form(SID, "undelivered", 30007))
    assert response.status_code == 200

    for channel in (notification_channel, user_channel):
        messages = receive_all(channel)
        assert len(messages) == 1
        message = messages[0]
        assert message["type"] == "sms.status"
        assert message["notification_id"] == str(sms.notification_id)
        assert message["status"] == "failed"
        assert message["delivery_status"] == "undelivered"
        assert message["error_code"] == 30007
        assert message["error_message"] == "Message filtered by the carrier"
        assert message["at"]


def test_callback_reaches_the_creator_with_a_time_in_utc(client: Client):
    """myNotifications of the creator hears it too; ``at`` has its offset on SQLite as well
    (the callback path reads times with raw SQL, which once left them naive)."""
    recipient = get_user_model().objects.create_user("ann", password="pw")
    creator = get_user_model().objects.create_user("bob", password="pw")
    sms = make_sms(user=recipient)
    Notification.objects.filter(pk=sms.notification_id).update(created_by=creator)
    creator_channel = listen([user_group(creator.pk)])

    assert post_signed(client, STATUS_PATH, status_form(SID, "delivered")).status_code == 200

    (message,) = receive_all(creator_channel)
    assert (message["user_id"], message["created_by_id"]) == (recipient.pk, creator.pk)
    assert message["delivery_status"] == "delivered"
    assert datetime.fromisoformat(message["at"]).utcoffset() == timedelta(0)


def test_stale_callback_publishes_nothing(client: Client):
    sms = make_sms()
    post_signed(client, STATUS_PATH, status_form(SID, "delivered"))
    channel = listen([notification_group(sms.notification_id)])
    assert post_signed(client, STATUS_PATH, status_form(SID, "sent")).status_code == 200
    assert receive_all(channel, timeout=0.5) == []


def test_publish_failure_never_fails_the_status_change(client: Client, settings, caplog):
    sms = make_sms()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}]},
        }
    }
    channel_layers.backends.clear()
    try:
        with caplog.at_level(logging.ERROR, logger="notification.status.events"):
            response = post_signed(client, STATUS_PATH, status_form(SID, "delivered"))
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 200
    sms.refresh_from_db()
    assert sms.delivery_status == "delivered"
    assert "not published" in caplog.text or "Could not publish" in caplog.text


def test_callback_before_the_sid_is_stored_is_applied_once_it_is(client: Client, redis):
    """Twilio's "sent"/"delivered" can beat the send job's write of the sid."""
    sms = make_sms(sid=None)
    for status in ("sent", "delivered"):
        assert post_signed(client, STATUS_PATH, status_form(SID, status)).status_code == 200
    sms.refresh_from_db()
    assert sms.delivery_status == ""

    channel = listen([notification_group(sms.notification_id)])
    # What the send job does: store sid and first status, then announce the change.
    SmsNotification.objects.filter(pk=sms.pk).update(twilio_sid=SID, delivery_status="queued")
    # Among the batch's other sids (no kept callbacks), this one is found.
    announce_written([sms.notification_id], ["SM" + "0" * 32, SID, "SM" + "1" * 32])

    sms.refresh_from_db()
    sms.notification.refresh_from_db()
    assert (sms.delivery_status, sms.notification.status) == ("delivered", "delivered")
    assert sms.delivered_datetime is not None
    # Each kept callback is announced as it is applied; the stale "queued" never is.
    statuses = [m["delivery_status"] for m in receive_all(channel)]
    assert statuses == ["sent", "delivered"]
    assert redis.keys("sms:early-status:*") == []  # used once, then gone


# --- overlapping callbacks' publishes go out together (notification.status.publish_batches) ---


def numbered(notification_id: int, number: int) -> dict:
    """A status event of ``notification_id`` that says which call published it."""
    return {
        "type": "sms.status",
        "notification_id": str(notification_id),
        "user_id": None,
        "created_by_id": None,
        "status": "sent",
        "delivery_status": "sent",
        "error_code": None,
        "error_message": str(number),
        "at": None,
    }


def test_overlapping_publishes_all_arrive_in_the_order_of_their_calls():
    """20 callbacks of one notification publishing at once: a subscriber hears all 20 in
    call order (the channel layer stores a batch's messages under one timestamp, so two
    changes of one notification never share a batch), and so do the subscribers of
    other notifications publishing in the same batches."""
    sms, other = make_sms(), make_sms(sid="SM" + "d" * 32)
    channel = listen([notification_group(sms.notification_id)])
    other_channel = listen([notification_group(other.notification_id)])

    async def overlapping() -> None:
        await asyncio.gather(
            *(
                publish_coalesced([numbered(row.notification_id, n)])
                for n in range(20)
                for row in (sms, other)
            )
        )

    async_to_sync(overlapping)()
    for listener in (channel, other_channel):
        heard = [message["error_message"] for message in receive_all(listener)]
        assert heard == [str(n) for n in range(20)]


def test_a_caller_that_goes_away_still_has_its_change_published():
    """The change is committed before the publish: a client that hangs up (its request
    task cancelled) must not take the subscribers' event with it."""
    sms = make_sms()
    channel = listen([notification_group(sms.notification_id)])

    async def hang_up() -> None:
        first = asyncio.ensure_future(publish_coalesced([numbered(sms.notification_id, 1)]))
        second = asyncio.ensure_future(publish_coalesced([numbered(sms.notification_id, 2)]))
        await asyncio.sleep(0)  # both joined their batches
        second.cancel()
        await first
        with pytest.raises(asyncio.CancelledError):
            await second
        # Batches go out in order: once a later one returns, the second's is out too.
        await publish_coalesced([numbered(sms.notification_id, 3)])

    async_to_sync(hang_up)()
    assert [message["error_message"] for message in receive_all(channel)] == ["1", "2", "3"]
