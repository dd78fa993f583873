"""Issue 17, defect 8: websockets that never say hello, or talk too fast, are closed.

Against uvicorn in a separate process, with the limits set low through the
environment: 1 s to send ``connection_init``, 2 messages per second (a burst of 10).
"""

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.graphql.ws.test_subscriptions_ws import make_user, open_ws, run_logged_in
from tests.graphql.ws.test_ws_abuse import closed_with
from tests.support.live_support import LegacyWsClient, TransportWsClient, open_socket, serve_project

pytestmark = pytest.mark.django_db(transaction=True)

INIT_TIMEOUT = 1
RATE = 2
BURST = 5 * RATE  # notification.graphql.ws.authority.MESSAGE_BURST_SECONDS


@pytest.fixture(scope="module")
def live_server_url(django_db_setup, django_db_blocker, redis_url):
    with serve_project(
        django_db_blocker,
        redis_url,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        GRAPHQL_WS_INIT_TIMEOUT=str(INIT_TIMEOUT),
        GRAPHQL_WS_MESSAGE_RATE=str(RATE),
    ) as url:
        yield url


async def still_answers(ws: TransportWsClient) -> None:
    """The socket is open and served: an operation on it gets its answer (here an error)."""
    op_id = await ws.subscribe("subscription { myNotifications { noSuchField } }")
    answer = await ws.receive()
    assert (answer["type"], answer["id"]) == ("error", op_id), answer


@pytest.mark.parametrize("client_class", [LegacyWsClient, TransportWsClient])
def test_a_socket_that_never_sends_connection_init_is_closed(live_server_url, client_class):
    ann = make_user("ann")

    async def scenario(session):
        ws = client_class(
            await open_socket(session.ws_url, client_class.protocol, session.cookie_header)
        )
        assert await closed_with(ws, timeout=INIT_TIMEOUT + 10) == 4408

    run_logged_in(live_server_url, ann, scenario)


def test_a_legacy_socket_that_said_hello_outlives_the_init_timeout(live_server_url):
    ann = make_user("ann")

    async def scenario(session):
        ws = await open_ws(session, LegacyWsClient)
        with pytest.raises(TimeoutError):  # nothing arrives, and above all no close
            await ws.receive(timeout=INIT_TIMEOUT + 1.5)
        await still_answers(ws)

    run_logged_in(live_server_url, ann, scenario)


@pytest.mark.parametrize("client_class", [LegacyWsClient, TransportWsClient])
def test_a_socket_flooding_messages_is_closed_with_4429(live_server_url, client_class):
    ann = make_user("ann")
    flood = {"type": "ping"} if client_class is TransportWsClient else {"type": "stop", "id": "x"}

    async def scenario(session):
        ws = await open_ws(session, client_class)
        try:
            for _ in range(BURST * 3):
                await ws.ws.send(json.dumps(flood))
        except ConnectionClosed:
            pass  # closed while still sending: the close code is read below
        assert await closed_with(ws) == 4429

    run_logged_in(live_server_url, ann, scenario)


def test_pings_within_the_rate_keep_the_socket_open(live_server_url):
    ann = make_user("ann")

    async def scenario(session):
        ws = await open_ws(session, TransportWsClient)
        for _ in range(BURST - 2):  # the connection_init took one token
            await ws.ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.ws.recv(), 10))["type"] == "pong"
        await still_answers(ws)

    run_logged_in(live_server_url, ann, scenario)
