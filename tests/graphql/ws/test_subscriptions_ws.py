"""GraphQL subscriptions over real websockets, against uvicorn in a separate process.

Status changes reach the server the ways they do in production: signed Twilio
callbacks posted to uvicorn's webhook, and publishes from another process (this
test process stands in for an RQ worker) through Redis.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from websockets.exceptions import InvalidStatus

from notification.models import Notification, SmsNotification
from notification.status.events import (
    notification_group,
    notify_status_changed,
    publish_payloads,
    user_group,
)
from tests.support.layer_helpers import group_size
from tests.support.live_support import (
    MY_NOTIFICATIONS_SUBSCRIPTION,
    SMS_STATUS_SUBSCRIPTION,
    STATUS_FIELDS,
    HttpSession,
    LegacyWsClient,
    TransportWsClient,
    open_socket,
    serve_project,
)
from tests.support.waiting import wait_until
from tests.support.webhook_helpers import STATUS_PATH, sign, status_form

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def live_server_url(django_db_setup, django_db_blocker, redis_url):
    """uvicorn serving ``config.asgi:application`` on the test database, for this module."""
    with serve_project(django_db_blocker, redis_url) as url:
        yield url


def make_user(username: str, *perms: str):
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def make_sms(user, sid: str, delivery_status: str = "queued") -> Notification:
    notification = Notification.objects.create(title="t", body="b", status="sent", user=user)
    SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=sid,
        delivery_status=delivery_status,
    )
    return notification


def post_callback(session: HttpSession, sid: str, status: str, error_code: int | None = None):
    """What Twilio does: a signed form POST to the public status callback URL."""
    form = status_form(sid, status, error_code)
    response = session.client.post(
        STATUS_PATH,
        data=form,
        headers={"X-Twilio-Signature": sign(session.base_url + STATUS_PATH, form)},
    )
    assert response.status_code == 200, response.text


def login(live_server_url: str, user) -> HttpSession:
    return HttpSession(live_server_url).login(user.username, PASSWORD)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def run_logged_in(
    live_server_url: str, user, scenario: Callable[[HttpSession], Awaitable[None]]
) -> None:
    """Run ``scenario(session)`` as ``user`` logged in; the session is closed even on failure."""
    session = login(live_server_url, user)
    try:
        run(scenario(session))
    finally:
        session.close()


async def open_ws(
    session: HttpSession, client_class: type[TransportWsClient] = TransportWsClient
) -> TransportWsClient:
    """A websocket authenticated by the session's cookies, speaking ``client_class``'s protocol."""
    return await client_class.connect(session.ws_url, session.cookie_header)


async def watch(
    session: HttpSession,
    notification: Notification,
    client_class: type[TransportWsClient] = TransportWsClient,
    query: str = SMS_STATUS_SUBSCRIPTION,
) -> tuple[TransportWsClient, dict[str, Any]]:
    """A socket subscribed to one notification's status, and the current status sent first."""
    ws = await open_ws(session, client_class)
    await ws.subscribe(query, {"ids": [str(notification.pk)]})
    return ws, await ws.next_event()


async def group_joined(group: str) -> None:
    """Wait until the server has joined ``group`` (it then receives every publish to it)."""
    await asyncio.to_thread(wait_until, lambda: group_size(group) > 0, 10, f"{group} joined")


async def group_left(group: str) -> None:
    """Wait until the server has left ``group`` (no subscription of it watches it any more)."""
    await asyncio.to_thread(wait_until, lambda: group_size(group) == 0, 10, f"{group} left")


async def callback(session: HttpSession, sid: str, status: str, error_code: int | None = None):
    """``post_callback`` in a thread, so the event loop keeps serving the sockets meanwhile."""
    await asyncio.to_thread(post_callback, session, sid, status, error_code)


@pytest.mark.parametrize("client_class", [TransportWsClient, LegacyWsClient])
def test_sms_status_sends_current_status_then_each_change(live_server_url, client_class):
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "1" * 32)

    async def scenario(session: HttpSession):
        ws, current = await watch(session, notification, client_class)
        assert current["notificationId"] == str(notification.pk)
        assert (current["status"], current["deliveryStatus"]) == ("SENT", "QUEUED")

        await callback(session, "SM" + "1" * 32, "sent")
        sent = await ws.next_event()
        assert (sent["status"], sent["deliveryStatus"]) == ("SENT", "SENT")

        await callback(session, "SM" + "1" * 32, "undelivered", 30005)
        failed = await ws.next_event()
        assert (failed["status"], failed["deliveryStatus"]) == ("FAILED", "UNDELIVERED")
        assert failed["errorCode"] == 30005
        assert failed["errorMessage"] == "Unknown destination handset"
        assert failed["at"]
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_publish_from_another_process_reaches_the_subscriber(live_server_url):
    """This test process plays the RQ worker: it changes a status and publishes via Redis."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "2" * 32)

    async def scenario(session: HttpSession):
        ws, current = await watch(session, notification)
        assert current["deliveryStatus"] == "QUEUED"

        def worker_changes_status():
            try:
                Notification.objects.filter(pk=notification.pk).update(status="canceled")
                notify_status_changed([notification.pk])
            finally:
                connection.close()  # this thread's own connection

        await asyncio.to_thread(worker_changes_status)
        assert (await ws.next_event())["status"] == "CANCELED"
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_a_late_older_publish_never_moves_the_subscriber_back(live_server_url):
    """Publishes from two processes can overtake each other; the subscriber only moves on."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "a" * 32)
    # What a worker that read the row just before the webhook's write would publish late.
    stale = {
        "type": "sms.status",
        "notification_id": str(notification.pk),
        "user_id": ann.pk,
        "status": "sent",
        "delivery_status": "queued",
        "error_code": None,
        "error_message": "",
        "at": None,
    }

    async def scenario(session: HttpSession):
        ws, current = await watch(session, notification)
        assert current["deliveryStatus"] == "QUEUED"
        await callback(session, "SM" + "a" * 32, "sent")
        assert (await ws.next_event())["deliveryStatus"] == "SENT"
        await asyncio.to_thread(async_to_sync(publish_payloads), [stale])
        await callback(session, "SM" + "a" * 32, "delivered")
        assert (await ws.next_event())["deliveryStatus"] == "DELIVERED"
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_a_retry_starting_over_reaches_the_subscriber(live_server_url):
    """A retryable failure re-queues the message: "not submitted" again, with the error."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "b" * 32)

    async def scenario(session: HttpSession):
        ws, current = await watch(session, notification)
        assert current["deliveryStatus"] == "QUEUED"
        await callback(session, "SM" + "b" * 32, "undelivered", 30003)
        event = await ws.next_event()
        assert (event["status"], event["deliveryStatus"]) == ("PENDING", "NOT_SUBMITTED")
        assert event["errorCode"] == 30003
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_subscribers_get_the_fields_they_asked_for(live_server_url):
    """One execution is shared per event and query text, never across different queries."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "c" * 32)
    narrow = "subscription W($ids: [ID!]) { smsStatus(notificationIds: $ids) { status } }"
    aliased = (
        "subscription W($ids: [ID!]) { smsStatus(notificationIds: $ids) "
        "{ id: notificationId code: errorCode deliveryStatus } }"
    )

    async def scenario(session: HttpSession):
        sockets = []
        for query in (narrow, aliased, SMS_STATUS_SUBSCRIPTION):
            ws, _current = await watch(session, notification, query=query)
            sockets.append(ws)
        await callback(session, "SM" + "c" * 32, "sent")
        events = [await ws.next_event() for ws in sockets]
        assert events[0] == {"status": "SENT"}
        assert events[1] == {"id": str(notification.pk), "code": None, "deliveryStatus": "SENT"}
        assert set(events[2]) == set(STATUS_FIELDS.split())
        assert events[2]["deliveryStatus"] == "SENT"
        for ws in sockets:
            await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_one_subscription_ending_leaves_the_others_listening(live_server_url):
    """Subscriptions of a process share one channel; a group is left only when none watch it."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "d" * 32)

    only_first_watches = make_sms(ann, "SM" + "e" * 32)

    async def scenario(session: HttpSession):
        # The first subscription also watches a notification nobody else does, listed
        # last: the server leaving that group is the signal that it has finished
        # ending the first subscription (groups are left in the order they were joined).
        first = await open_ws(session)
        ids = [str(notification.pk), str(only_first_watches.pk)]
        await first.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": ids})
        for _current in ids:
            await first.next_event()
        second, _current = await watch(session, notification)
        await first.close()
        await group_left(notification_group(only_first_watches.pk))
        await callback(session, "SM" + "d" * 32, "sent")
        assert (await second.next_event())["deliveryStatus"] == "SENT"
        await second.close()
        await group_left(notification_group(notification.pk))  # nobody watches it now

        third, current = await watch(session, notification)
        assert current["deliveryStatus"] == "SENT"
        await callback(session, "SM" + "d" * 32, "delivered")
        assert (await third.next_event())["deliveryStatus"] == "DELIVERED"
        await third.close()

    run_logged_in(live_server_url, ann, scenario)


def test_idle_subscription_still_receives_after_15_seconds(live_server_url):
    """redis-py 8 drops idle blocking reads after 5 s unless socket_timeout is None."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "3" * 32)

    async def scenario(session: HttpSession):
        ws, current = await watch(session, notification)
        assert current["deliveryStatus"] == "QUEUED"
        await asyncio.sleep(15)  # the idle time under test, not a wait for anything
        await callback(session, "SM" + "3" * 32, "delivered")
        delivered = await ws.next_event(timeout=10)
        assert (delivered["status"], delivered["deliveryStatus"]) == ("DELIVERED", "DELIVERED")
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


@pytest.mark.parametrize("client_class", [TransportWsClient, LegacyWsClient])
def test_another_users_notification_is_a_graphql_error(live_server_url, client_class):
    ann, bob = make_user("ann"), make_user("bob")
    bobs = make_sms(bob, "SM" + "4" * 32)
    anns = make_sms(ann, "SM" + "5" * 32)

    async def scenario(session: HttpSession):
        ws = await open_ws(session, client_class)
        for ids in ([str(bobs.pk)], [str(anns.pk), str(bobs.pk)], ["987654"]):
            await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": ids})
            message = await ws.receive()
            # A GraphQL error in the result (next/data), then the operation completes.
            assert message["type"] in ("next", "data"), message
            assert message["payload"]["data"] is None
            errors = message["payload"]["errors"]
            assert (await ws.receive())["type"] == "complete"
            assert "that you may watch" in errors[0]["message"], message
            assert ids[-1] in errors[0]["message"]
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_ids_that_are_not_database_ids_are_a_graphql_error(live_server_url):
    """The same id parser as queries and mutations: "²" is a digit to ``str.isdigit``."""
    ann = make_user("ann")

    async def scenario(session: HttpSession):
        ws = await open_ws(session, TransportWsClient)
        for bad in ("²", "9" * 20, "0"):
            await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [bad]})
            message = await ws.receive()
            assert message["payload"]["data"] is None
            assert "not a notification id" in message["payload"]["errors"][0]["message"]
            assert (await ws.receive())["type"] == "complete"
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_view_permission_may_watch_anyones_notification(live_server_url):
    staff = make_user("staff", "notification.view_notification")
    bob = make_user("bob")
    bobs = make_sms(bob, "SM" + "6" * 32)

    async def scenario(session: HttpSession):
        ws, current = await watch(session, bobs)
        assert current["notificationId"] == str(bobs.pk)
        await ws.close()

    run_logged_in(live_server_url, staff, scenario)


@pytest.mark.parametrize("owner", ["recipient", "creator"])
def test_my_notifications_streams_only_the_callers_own_changes(live_server_url, owner):
    ann, bob = make_user("ann"), make_user("bob")
    anns = make_sms(ann, "SM" + "7" * 32)
    if owner == "creator":  # addressed to nobody, created by ann: still hers
        Notification.objects.filter(pk=anns.pk).update(user=None, created_by=ann)
    make_sms(bob, "SM" + "8" * 32)

    async def scenario(session: HttpSession):
        ws = await open_ws(session)
        await ws.subscribe(MY_NOTIFICATIONS_SUBSCRIPTION)
        await group_joined(user_group(ann.pk))  # no initial event here: Redis shows the join
        await callback(session, "SM" + "8" * 32, "delivered")  # bob's
        await callback(session, "SM" + "7" * 32, "delivered")  # ann's
        event = await ws.next_event()
        assert (event["notificationId"], event["deliveryStatus"]) == (str(anns.pk), "DELIVERED")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=1)
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_anonymous_socket_is_refused(live_server_url, protocol):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(live_server_url.replace("http", "ws") + "/graphql/", protocol)
        assert refused.value.response.status_code == 403

    run(scenario())


def test_logged_out_session_cookie_is_refused(live_server_url):
    ann = make_user("ann")
    session = login(live_server_url, ann)
    cookie = session.cookie_header
    session.graphql("mutation { logout }")

    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(session.ws_url, "graphql-transport-ws", cookie)
        assert refused.value.response.status_code == 403

    run(scenario())
    session.close()


def test_cross_site_page_is_refused_same_origin_allowed(live_server_url):
    ann = make_user("ann")

    async def scenario(session: HttpSession):
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(
                session.ws_url,
                "graphql-transport-ws",
                session.cookie_header,
                origin="https://attacker.example",
            )
        assert refused.value.response.status_code == 403
        ws = await open_socket(
            session.ws_url, "graphql-transport-ws", session.cookie_header, origin=live_server_url
        )
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_status_callbacks_through_uvicorn_are_still_signature_checked(live_server_url):
    """uvicorn routes the callback path around Django's middleware: the view still checks."""
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "9" * 32)
    session = HttpSession(live_server_url)
    form = status_form("SM" + "9" * 32, "delivered")
    forged = session.client.post(STATUS_PATH, data=form, headers={"X-Twilio-Signature": "x"})
    unsigned = session.client.post(STATUS_PATH, data=form)
    wrong_method = session.client.get(STATUS_PATH)
    session.close()
    assert (forged.status_code, unsigned.status_code, wrong_method.status_code) == (403, 403, 405)
    sms = SmsNotification.objects.get(notification=notification)
    assert sms.delivery_status == "queued"
