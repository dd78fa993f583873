"""Websockets that must not outlive their authority, and their limits (issue 10).

Against uvicorn in a separate process, as in production; the limits are set low
through the environment so that the tests stay small. Each socket's authority
is re-checked on every operation, on a pushed logout or user change, and every
second here (``GRAPHQL_WS_AUTH_RECHECK_SECONDS=1``).
"""

import asyncio
import json

import httpx
import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from notification.models import Notification
from tests.graphql.ws.test_subscriptions_ws import (
    login,
    make_sms,
    make_user,
    open_ws,
    post_callback,
    run,
    run_logged_in,
)
from tests.support.live_support import (
    SMS_STATUS_SUBSCRIPTION,
    HttpSession,
    LegacyWsClient,
    TransportWsClient,
    open_socket,
    serve_project,
)

pytestmark = pytest.mark.django_db(transaction=True)

MAX_MESSAGE_BYTES = 4096
MAX_SOCKETS = 3
MAX_SUBSCRIPTIONS = 2
CREATE = (
    'mutation { createSmsNotification(input: {title: "t", body: "b", '
    'toPhoneNumber: "+14155550100"}) { notification { id } errors { code } } }'
)


@pytest.fixture(scope="module")
def live_server_url(django_db_setup, django_db_blocker, redis_url):
    with serve_project(
        django_db_blocker,
        redis_url,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        GRAPHQL_WS_MAX_MESSAGE_BYTES=str(MAX_MESSAGE_BYTES),
        GRAPHQL_WS_MAX_SOCKETS_PER_USER=str(MAX_SOCKETS),
        GRAPHQL_WS_MAX_SUBSCRIPTIONS=str(MAX_SUBSCRIPTIONS),
        GRAPHQL_WS_AUTH_RECHECK_SECONDS="1",
    ) as url:
        yield url


async def closed_with(ws: TransportWsClient, timeout: float = 10) -> int:
    """Wait for the server to close the socket; its close code (fails if it sends anything)."""
    try:
        message = await ws.receive(timeout)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code
    raise AssertionError(f"expected the socket to be closed, got {message}")


async def in_thread(function, *args):
    """``function`` in a thread (the ORM is sync), its database connection closed after."""

    def call():
        try:
            return function(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(call)


def _permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="notification", codename=codename)


# --- a socket stops acting for a session that ended or a user who lost access ----------


@pytest.mark.parametrize("client_class", [TransportWsClient, LegacyWsClient])
def test_http_logout_closes_the_sessions_sockets_and_no_event_follows(
    live_server_url, client_class
):
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "1" * 32)

    async def scenario(session: HttpSession):
        ws = await open_ws(session, client_class)
        await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [str(notification.pk)]})
        assert (await ws.next_event())["deliveryStatus"] == "QUEUED"
        await in_thread(session.graphql, "mutation { logout }")
        assert await closed_with(ws) == 4403
        # A status change afterwards reaches nobody through that socket (it is gone).
        other = login(live_server_url, ann)
        try:
            await in_thread(post_callback, other, "SM" + "1" * 32, "delivered")
        finally:
            other.close()

    run_logged_in(live_server_url, ann, scenario)


def test_a_deactivated_user_loses_their_sockets(live_server_url):
    ann = make_user("ann")

    async def scenario(session: HttpSession):
        ws = await open_ws(session)

        def deactivate():
            ann.is_active = False
            ann.save()

        await in_thread(deactivate)
        assert await closed_with(ws) == 4403

    run_logged_in(live_server_url, ann, scenario)


def test_a_removed_permission_closes_the_socket_before_another_mutation(live_server_url):
    ann = make_user("ann", "notification.add_notification")

    async def scenario(session: HttpSession):
        ws = await open_ws(session)
        await ws.subscribe(CREATE)
        created = await ws.receive()
        assert created["payload"]["data"]["createSmsNotification"]["notification"], created
        assert (await ws.receive())["type"] == "complete"

        await in_thread(lambda: ann.user_permissions.remove(_permission("add_notification")))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.subscribe(CREATE)
            await ws.receive()
        assert closed.value.rcvd.code == 4403

    run_logged_in(live_server_url, ann, scenario)
    assert Notification.objects.filter(user__isnull=True).count() <= 1
    assert Notification.objects.count() == 1


def test_a_permission_lost_through_a_group_is_noticed_by_the_periodic_recheck(live_server_url):
    """Group permission edits are not pushed; the re-check (1 s here) finds them."""
    staff = make_user("staff")
    group = Group.objects.create(name="viewers")
    group.permissions.add(_permission("view_notification"))
    staff.groups.add(group)
    bob = make_user("bob")
    bobs = make_sms(bob, "SM" + "2" * 32)

    async def scenario(session: HttpSession):
        ws = await open_ws(session)
        await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [str(bobs.pk)]})
        assert (await ws.next_event())["notificationId"] == str(bobs.pk)
        await in_thread(group.permissions.clear)
        assert await closed_with(ws) == 4403

    run_logged_in(live_server_url, staff, scenario)


@pytest.mark.parametrize(
    "operation",
    [
        'mutation { login(username: "ann", password: "wrong") { id } }',
        "mutation { logout }",
    ],
)
def test_login_and_logout_are_refused_over_the_socket(live_server_url, operation):
    ann = make_user("ann")

    async def scenario(session: HttpSession):
        ws = await open_ws(session)
        await ws.subscribe(operation)
        result = await ws.receive()
        errors = result["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "http_only", result
        assert "Incorrect" not in json.dumps(result)  # no password oracle
        # The session is untouched: HTTP still knows the user.
        me = await in_thread(session.graphql, "{ notifications { totalCount } }")
        assert not me.get("errors"), me
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


# --- limits --------------------------------------------------------------------------


def test_a_message_over_the_size_cap_closes_that_socket_only(live_server_url):
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "3" * 32)

    async def scenario(session: HttpSession):
        big = await open_ws(session)
        small = await open_ws(session)
        padding = "a" * MAX_MESSAGE_BYTES
        await big.ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }" + padding}}
            )
        )
        assert await closed_with(big) == 1009
        await small.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [str(notification.pk)]})
        assert (await small.next_event())["deliveryStatus"] == "QUEUED"
        await small.close()

    run_logged_in(live_server_url, ann, scenario)


def test_operations_per_socket_are_capped(live_server_url):
    ann = make_user("ann")
    notification = make_sms(ann, "SM" + "4" * 32)

    async def scenario(session: HttpSession):
        ws = await open_ws(session)
        for _ in range(MAX_SUBSCRIPTIONS):
            await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [str(notification.pk)]})
            assert (await ws.next_event())["deliveryStatus"] == "QUEUED"
        await ws.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": [str(notification.pk)]})
        refused = await ws.receive()
        assert refused["type"] == "error", refused
        assert "limit" in refused["payload"][0]["message"]
        await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_open_sockets_per_user_are_capped(live_server_url):
    ann = make_user("ann")

    async def scenario(session: HttpSession):
        sockets = [await open_ws(session) for _ in range(MAX_SOCKETS)]
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(session)
        assert refused.value.response.status_code == 403
        await sockets.pop().close()
        # The server counts the closed socket out as soon as it hears of it.
        for _attempt in range(50):
            try:
                sockets.append(await open_ws(session))
                break
            except InvalidStatus:
                await asyncio.sleep(0.1)
        assert len(sockets) == MAX_SOCKETS
        for ws in sockets:
            await ws.close()

    run_logged_in(live_server_url, ann, scenario)


def test_the_handshake_checks_allowed_hosts(live_server_url):
    """A Host outside DJANGO_ALLOWED_HOSTS is refused, as Django refuses it over HTTP."""
    ann = make_user("ann")
    session = login(live_server_url, ann)
    try:
        upgrade = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "graphql-transport-ws",
            "Cookie": session.cookie_header,
        }
        with httpx.Client(base_url=live_server_url, trust_env=False, timeout=10) as client:
            response = client.get("/graphql/", headers={**upgrade, "Host": "evil.example"})
        assert response.status_code == 403

        async def allowed():
            ws = await open_socket(session.ws_url, "graphql-transport-ws", session.cookie_header)
            await ws.close()

        run(allowed())
    finally:
        session.close()
