"""End to end, every part its own process: uvicorn (web + websockets), the Twilio
emulator, and an RQ worker. A frontend-like client logs in over HTTP, creates an
SMS through the mutation, subscribes over a websocket, and the batch is run by
the worker; the emulator's signed callbacks reach uvicorn's webhook, and the
subscriber sees queued, sent, delivered in that order.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.support.live_support import (
    SMS_STATUS_SUBSCRIPTION,
    HttpSession,
    LegacyWsClient,
    TransportWsClient,
    run_worker,
)

pytestmark = [
    pytest.mark.db_vendor,
    pytest.mark.slow,  # whole stacks of processes per test: started first (tests/README.md)
]

PASSWORD = "correct horse battery staple"
CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id status sms { deliveryStatus } }
    errors { field message }
  }
}
"""
RANK = {"NOT_SUBMITTED": 0, "QUEUED": 1, "SENDING": 2, "SENT": 3, "DELIVERED": 4}


def make_staff():
    user = get_user_model().objects.create_user("dispatcher", password=PASSWORD)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notification",
            codename__in=["add_notification", "view_notification"],
        )
    )
    return user


def create_and_watch(
    base_url: str,
    worker_env: dict[str, str],
    client_class,
    on_event: Callable[[dict], None] = lambda event: None,
) -> list[dict]:
    """Create an SMS, subscribe, run the worker; every event until DELIVERED, in order.
    ``on_event`` sees each event as it arrives (before the next is awaited)."""
    user = make_staff()
    session = HttpSession(base_url).login(user.username, PASSWORD)
    created = session.graphql(
        CREATE,
        {
            "input": {
                "title": "Parcel",
                "body": "Your parcel arrives today",
                "toPhoneNumber": "+1 415 555 0100",
                "userId": str(user.pk),
            }
        },
    )["data"]["createSmsNotification"]
    assert created["errors"] == [], created
    notification_id = created["notification"]["id"]

    async def scenario() -> list[dict]:
        ws = await client_class.connect(session.ws_url, session.cookie_header)
        await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [notification_id]})
        events = [await ws.next_event()]
        worker = asyncio.create_task(asyncio.to_thread(run_worker, worker_env))
        while events[-1]["deliveryStatus"] != "DELIVERED":
            events.append(await ws.next_event(timeout=30))
            await asyncio.to_thread(on_event, events[-1])
        await worker
        await ws.close()
        return events

    try:
        events = asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        session.close()
    assert {event["notificationId"] for event in events} == {notification_id}
    return events


def delivery_statuses(events: list[dict]) -> list[str]:
    statuses: list[str] = []
    for event in events:
        if not statuses or statuses[-1] != event["deliveryStatus"]:
            statuses.append(event["deliveryStatus"])
    return statuses


@pytest.mark.parametrize("client_class", [TransportWsClient, LegacyWsClient])
def test_subscriber_sees_queued_sent_delivered_in_order(live_stack, client_class):
    # Realistic pacing (1 segment/s): "sent" comes about a second after the create.
    base_url, worker_env, emulator = live_stack(drain_rate="1", callback_delay_ms="300")
    # Twilio's callbacks wait until the worker's own "queued" has reached the
    # subscriber: on a busy machine the worker can take longer than that second.
    emulator.configure(callbacks_paused=True)

    def let_callbacks_go_after_queued(event: dict) -> None:
        if event["deliveryStatus"] == "QUEUED":
            emulator.configure(callbacks_paused=False)

    events = create_and_watch(base_url, worker_env, client_class, let_callbacks_go_after_queued)

    assert (events[0]["status"], events[0]["deliveryStatus"]) == ("PENDING", "NOT_SUBMITTED")
    assert delivery_statuses(events) == ["NOT_SUBMITTED", "QUEUED", "SENT", "DELIVERED"]
    assert events[-1]["status"] == "DELIVERED"
    assert events[-1]["errorCode"] is None
    # Every time carries a UTC offset, also those of callback-made events on SQLite.
    assert all(datetime.fromisoformat(event["at"]).utcoffset() is not None for event in events)


def test_callbacks_racing_the_workers_write_still_end_delivered(live_stack):
    """A fast emulator can call back before the worker stored the sid: never lost, never back."""
    base_url, worker_env, _emulator = live_stack(drain_rate="10000", callback_delay_ms="5")
    events = create_and_watch(base_url, worker_env, TransportWsClient)

    ranks = [RANK[status] for status in delivery_statuses(events)]
    assert ranks == sorted(ranks), events
    assert events[-1]["status"] == "DELIVERED"
