"""The direct send lane (``notification.graphql.ws.lane``) against uvicorn in its own process.

Each test runs the same selection two ways on one server: plain (the lane writes its
events) and with ``@include(if: true)`` on every field, which selects exactly the
same fields but which the lane refuses (directives), so strawberry's own path sends
those events. The server's ``sms_subscribers_direct`` gauge says which way each
subscription went, so a lane that silently never ran would fail here.
"""

import asyncio
import contextlib
import json
import re
from typing import Any

import httpx
import pytest

from tests.graphql.ws.test_subscriptions_ws import (
    login,
    make_sms,
    make_user,
    post_callback,
    run_logged_in,
)
from tests.support.live_support import (
    HttpSession,
    LegacyWsClient,
    TransportWsClient,
    serve_project,
)

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "lane-metrics-token-0123456789abcdef"
#: Every plain field of SmsStatusEvent, an alias and __typename: all the lane produces.
PLAIN_FIELDS = [
    "notificationId",
    "state: status",
    "deliveryStatus",
    "errorCode",
    "errorMessage",
    "at",
    "__typename",
]


@pytest.fixture(scope="module")
def live_server_url(django_db_setup, django_db_blocker, redis_url):
    with serve_project(
        django_db_blocker, redis_url, METRICS_TOKEN=TOKEN, METRICS_CACHE_SECONDS="0"
    ) as url:
        yield url


def sms_status(fields: list[str], directive: str = "", root: str = "smsStatus") -> str:
    selection = " ".join(f"{field}{directive}" for field in fields)
    return f"subscription W($ids: [ID!]) {{ {root}(notificationIds: $ids) {{ {selection} }} }}"


def forced_fallback(fields: list[str], root: str = "smsStatus") -> str:
    """The same selection with a no-op directive on each field: strawberry's path."""
    return sms_status(fields, " @include(if: true)", root)


def direct_subscriptions(base_url: str, gauge: str = "sms_subscribers_direct") -> float:
    """``sms_subscribers_direct`` (or another gauge) as the server reports it now."""
    text = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    found = re.search(rf"^{gauge} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, text[:2000]
    return float(found.group(1))


async def raw_frame(client: TransportWsClient, timeout: float = 10) -> str:
    """The next result message exactly as the server wrote it (keep-alives skipped)."""
    while True:
        text = await asyncio.wait_for(client.ws.recv(), timeout)
        if json.loads(text)["type"] not in ("ka", "ping", "pong"):
            return text


async def connected(
    session: HttpSession, clients: list, client_class: type, compression: str | None = "deflate"
) -> Any:
    """A socket of ``session``'s user, closed when the scenario ends (``run_as``);
    ``compression`` None: no permessage-deflate (the Procfile's server offers none)."""
    client = await client_class.connect(session.ws_url, session.cookie_header, compression)
    clients.append(client)
    return client


async def subscribed(
    session: HttpSession,
    clients: list,
    client_class: type,
    query: str,
    ids: list[str],
    compression: str | None = "deflate",
) -> tuple[TransportWsClient, str]:
    """A socket subscribed with operation id "1", and its first (current status) frame."""
    client = await connected(session, clients, client_class, compression)
    await client.subscribe(query, {"ids": ids})
    return client, await raw_frame(client)


def run_as(live_server_url: str, user: Any, scenario: Any) -> None:
    """``scenario(session, clients)`` logged in as ``user``; every socket it opened is
    closed afterwards, failed or not (a socket left open would count in the next test)."""

    async def closing(session: HttpSession) -> None:
        clients: list = []
        try:
            await scenario(session, clients)
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()

    run_logged_in(live_server_url, user, closing)


async def direct_count_becomes(
    base_url: str, expected: int, gauge: str = "sms_subscribers_direct"
) -> None:
    """Wait until the server counts ``expected`` direct subscriptions (they start and end
    in tasks of their own, a moment after the client's message)."""
    for _attempt in range(100):
        now = await asyncio.to_thread(direct_subscriptions, base_url, gauge)
        if now == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{gauge} {now}, expected {expected}")


@pytest.mark.parametrize("client_class", [TransportWsClient, LegacyWsClient])
def test_the_lane_writes_the_bytes_strawberry_would(live_server_url, client_class):
    ann = make_user("ann")
    sid = "SM" + "7" * 32
    notification = make_sms(ann, sid)
    ids = [str(notification.pk)]

    async def scenario(session: HttpSession, clients: list):
        lane, lane_first = await subscribed(
            session, clients, client_class, sms_status(PLAIN_FIELDS), ids
        )
        plain, plain_first = await subscribed(
            session, clients, client_class, forced_fallback(PLAIN_FIELDS), ids
        )
        await direct_count_becomes(live_server_url, 1)
        # Two subscriptions, not four: a socket's guard watching its session is not one.
        await direct_count_becomes(live_server_url, 2, gauge="sms_subscribers")
        assert lane_first == plain_first
        assert json.loads(lane_first)["payload"]["data"]["smsStatus"]["errorCode"] is None
        # A change, then one with an error code and message: every field non-null once.
        for status, code in (("sent", None), ("undelivered", 30003)):
            await asyncio.to_thread(post_callback, session, sid, status, code)
            lane_frame, plain_frame = await raw_frame(lane), await raw_frame(plain)
            assert lane_frame == plain_frame
            event = json.loads(lane_frame)["payload"]["data"]["smsStatus"]
            assert event["errorCode"] == code
            assert event["__typename"] == "SmsStatusEvent"
        assert event["errorMessage"] and event["at"]
        for client in (lane, plain):
            await client.close()
        await direct_count_becomes(live_server_url, 0)
        await direct_count_becomes(live_server_url, 0, gauge="sms_subscribers")

    run_as(live_server_url, ann, scenario)


@pytest.mark.parametrize("client_class", [TransportWsClient, LegacyWsClient])
def test_without_compression_the_lane_writes_shared_frames_with_the_same_bytes(
    live_server_url, client_class
):
    """A socket with no permessage-deflate (the Procfile serves none) takes each change's
    frame built once for all (``ws.wire``), counted in ``sms_subscribers_direct_frames``;
    a compressed one is written through ``send``; both equal strawberry's bytes."""
    ann = make_user("ann")
    sid = "SM" + "8" * 32
    ids = [str(make_sms(ann, sid).pk)]

    async def scenario(session: HttpSession, clients: list):
        query = sms_status(PLAIN_FIELDS)
        framed, framed_first = await subscribed(
            session, clients, client_class, query, ids, compression=None
        )
        deflated, deflated_first = await subscribed(session, clients, client_class, query, ids)
        plain, plain_first = await subscribed(
            session, clients, client_class, forced_fallback(PLAIN_FIELDS), ids, compression=None
        )
        await direct_count_becomes(live_server_url, 2)
        await direct_count_becomes(live_server_url, 1, "sms_subscribers_direct_frames")
        assert framed_first == deflated_first == plain_first
        for status, code in (("sent", None), ("undelivered", 30003)):
            await asyncio.to_thread(post_callback, session, sid, status, code)
            frames = [await raw_frame(client) for client in (framed, deflated, plain)]
            assert frames[0] == frames[1] == frames[2]
            assert json.loads(frames[0])["payload"]["data"]["smsStatus"]["errorCode"] == code
        for client in (framed, deflated, plain):
            with pytest.raises(TimeoutError):  # each change written once
                await raw_frame(client, timeout=0.3)
            await client.close()
        await direct_count_becomes(live_server_url, 0, "sms_subscribers_direct_frames")
        await direct_count_becomes(live_server_url, 0)

    run_as(live_server_url, ann, scenario)


def test_an_aliased_root_field_and_my_notifications_take_the_lane_with_the_same_bytes(
    live_server_url,
):
    ann = make_user("ann")
    bob = make_user("bob")
    sid = "SM" + "8" * 32
    mine = make_sms(ann, sid)
    make_sms(bob, "SM" + "9" * 32)
    aliased = sms_status(["deliveryStatus", "notificationId"], root="watched: smsStatus")
    aliased_fallback = forced_fallback(["deliveryStatus", "notificationId"], "watched: smsStatus")
    inbox = "subscription { myNotifications { notificationId deliveryStatus errorCode } }"
    inbox_fallback = (
        "subscription { myNotifications { notificationId @include(if: true) "
        "deliveryStatus @include(if: true) errorCode @include(if: true) } }"
    )

    async def scenario(session: HttpSession, clients: list):
        first, first_frame = await subscribed(
            session, clients, TransportWsClient, aliased, [str(mine.pk)]
        )
        second, second_frame = await subscribed(
            session, clients, TransportWsClient, aliased_fallback, [str(mine.pk)]
        )
        assert first_frame == second_frame
        assert '"watched":' in first_frame
        inboxes = []
        for query in (inbox, inbox_fallback):
            client = await connected(session, clients, TransportWsClient)
            await client.subscribe(query)
            inboxes.append(client)
        await direct_count_becomes(live_server_url, 2)
        # Bob's notification changing is not Ann's business: her inbox stays quiet.
        bob_session = login(live_server_url, bob)
        try:
            await asyncio.to_thread(post_callback, bob_session, "SM" + "9" * 32, "sent")
        finally:
            bob_session.close()
        await asyncio.to_thread(post_callback, session, sid, "delivered")
        frames = [await raw_frame(client) for client in (first, second, *inboxes)]
        assert frames[0] == frames[1]
        assert frames[2] == frames[3]
        assert json.loads(frames[2])["payload"]["data"]["myNotifications"] == {
            "notificationId": str(mine.pk),
            "deliveryStatus": "DELIVERED",
            "errorCode": None,
        }
        for client in (first, second, *inboxes):
            await client.close()

    run_as(live_server_url, ann, scenario)


@pytest.mark.parametrize(
    "selection",
    [
        "notification { id status }",  # a resolver: the row as it is now
        "...F",  # a fragment
        "... on SmsStatusEvent { status }",  # an inline fragment
        "status @skip(if: false)",  # a directive
    ],
)
def test_selections_the_lane_cannot_produce_keep_strawberrys_path(live_server_url, selection):
    ann = make_user("ann")
    sid = "SM" + "6" * 32
    notification = make_sms(ann, sid)
    query = sms_status([selection])
    if selection == "...F":
        query += " fragment F on SmsStatusEvent { deliveryStatus }"

    async def scenario(session: HttpSession, clients: list):
        client, first = await subscribed(
            session, clients, TransportWsClient, query, [str(notification.pk)]
        )
        await direct_count_becomes(live_server_url, 0)
        assert "errors" not in json.loads(first)["payload"], first
        await asyncio.to_thread(post_callback, session, sid, "sent")
        data: dict[str, Any] = json.loads(await raw_frame(client))["payload"]["data"]
        assert "SENT" in json.dumps(data)
        await client.close()

    run_as(live_server_url, ann, scenario)


def test_the_lane_enforces_ownership_like_strawberrys_path(live_server_url):
    """Another user's notification: the same coded error, and no subscription stays open."""
    ann = make_user("ann")
    bob = make_user("bob")
    notification = make_sms(bob, "SM" + "5" * 32)

    async def scenario(session: HttpSession, clients: list):
        frames = []
        for query in (sms_status(PLAIN_FIELDS), forced_fallback(PLAIN_FIELDS)):
            _client, frame = await subscribed(
                session, clients, TransportWsClient, query, [str(notification.pk)]
            )
            frames.append(json.loads(frame))
            await _client.close()
        assert frames[0] == frames[1]
        assert frames[0]["type"] == "next"
        assert frames[0]["payload"]["data"] is None
        assert "no notification" in frames[0]["payload"]["errors"][0]["message"]
        await direct_count_becomes(live_server_url, 0)

    run_as(live_server_url, ann, scenario)


def test_a_burst_of_changes_arrives_once_each_in_order_on_every_path(live_server_url):
    """Many changes published back to back: the lane writes some as they arrive and
    queues others behind a pending write; either way each is written once, in order."""
    ann = make_user("ann")
    rows = [make_sms(ann, f"SM{index:032d}") for index in range(30)]
    ids = [str(row.pk) for row in rows]
    fields = ["notificationId", "deliveryStatus"]

    def publish_burst() -> None:
        from django.db import connection

        from notification.models import SmsNotification
        from notification.status.events import publish_status_changes

        try:
            for row in rows:
                SmsNotification.objects.filter(notification=row).update(delivery_status="sent")
                publish_status_changes([row.pk])
        finally:
            connection.close()

    async def scenario(session: HttpSession, clients: list):
        sockets = []
        # The lane through send (compressed), the lane's shared frames, strawberry's path.
        for query, compression in (
            (sms_status(fields), "deflate"),
            (sms_status(fields), None),
            (forced_fallback(fields), "deflate"),
        ):
            client = await connected(session, clients, TransportWsClient, compression)
            await client.subscribe(query, {"ids": ids})
            sockets.append((client, [await raw_frame(client) for _ in ids]))
        await direct_count_becomes(live_server_url, 2)
        await direct_count_becomes(live_server_url, 1, "sms_subscribers_direct_frames")
        assert sockets[0][1] == sockets[1][1] == sockets[2][1]  # current statuses, id order
        await asyncio.to_thread(publish_burst)
        got = [[await raw_frame(client) for _ in ids] for client, _current in sockets]
        assert got[0] == got[1] == got[2]
        events = [json.loads(frame)["payload"]["data"]["smsStatus"] for frame in got[0]]
        assert [event["notificationId"] for event in events] == ids
        assert {event["deliveryStatus"] for event in events} == {"SENT"}
        for client, _current in sockets:  # and nothing more (no event written twice)
            with pytest.raises(TimeoutError):
                await raw_frame(client, timeout=0.5)

    run_as(live_server_url, ann, scenario)
