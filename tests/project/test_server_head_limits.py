"""Issue 17, defect 2: connections must earn their place (``notification.http_guard``).

uvicorn as the tests and benches start it (``devstack.subprocesses.SERVER_LIMITS``),
once with each guarded protocol (``GuardedHttpToolsProtocol``, served by default,
and ``GuardedH11Protocol``: the same rules over another parser), with the limits
set low through the environment: 2 s to send a request head, 5 connections per address.
The hostile connections come from 127.0.0.2 (any 127/8 address is this machine),
so the test's own client at 127.0.0.1 shows what everyone else gets meanwhile.
"""

import asyncio
import socket
import time

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from devstack.subprocesses import GUARDED_PROTOCOLS
from tests.graphql.ws.test_subscriptions_ws import login, make_user
from tests.support.live_support import serve_project
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

HEAD_TIMEOUT = 2
PER_ADDRESS = 5
ATTACKER = "127.0.0.2"
HEAD = b"GET /graphql/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
# A head that is complete, of a body that never comes: held open, not timed (a body
# is the application's to wait for), so it keeps its place under the per-address cap.
HELD = b"POST /graphql/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"


@pytest.fixture(scope="module", params=sorted(GUARDED_PROTOCOLS))
def server_address(request, django_db_setup, django_db_blocker, redis_url):
    with serve_project(
        django_db_blocker,
        redis_url,
        http=GUARDED_PROTOCOLS[request.param],
        HTTP_HEAD_TIMEOUT=str(HEAD_TIMEOUT),
        HTTP_MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
    ) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def connect(address, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(address, timeout=HEAD_TIMEOUT + 10, source_address=(source, 0))


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails)."""
    chunks = []
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_line(response: bytes) -> bytes:
    return response.split(b"\r\n", 1)[0]


def served(address, source: str = "127.0.0.1") -> bytes:
    with connect(address, source) as conn:
        conn.sendall(HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return status_line(read_until_closed(conn))


def is_served(status: bytes) -> bool:
    """An HTTP answer from the application (GET /graphql/ without GraphiQL: 404), not 503."""
    return status.startswith(b"HTTP/1.1 4")


def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(server_address):
    started = time.monotonic()
    with connect(server_address) as conn:
        assert read_until_closed(conn) == b""  # closed without a word
    assert HEAD_TIMEOUT - 0.5 < time.monotonic() - started < HEAD_TIMEOUT + 5


def test_a_head_sent_a_byte_at_a_time_is_closed_with_408(server_address):
    started = time.monotonic()
    with connect(server_address) as conn:
        try:
            for byte in HEAD:  # slow loris: 40 bytes at 0.25 s would take 10 s
                conn.sendall(bytes([byte]))
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(conn)
    assert time.monotonic() - started < HEAD_TIMEOUT + 5
    assert status_line(answer) in (b"HTTP/1.1 408 Request Timeout", b""), answer


def test_a_kept_alive_connection_must_send_its_next_head_in_time_too(server_address):
    with connect(server_address) as conn:
        conn.sendall(HEAD)
        first = conn.recv(65536)
        assert status_line(first).startswith(b"HTTP/1.1 "), first
        conn.sendall(HEAD[:10])  # the next request starts, and stalls
        answer = read_until_closed(conn)
    assert b"408 Request Timeout" in answer, answer


def test_one_address_cannot_take_more_than_its_share(server_address):
    hogs = [connect(server_address, ATTACKER) for _ in range(PER_ADDRESS)]
    try:
        for hog in hogs:
            hog.sendall(HELD)
        with connect(server_address, ATTACKER) as one_more:
            one_more.sendall(HEAD)
            refused = read_until_closed(one_more)
        assert status_line(refused) == b"HTTP/1.1 503 Service Unavailable", refused
        assert b"Too many connections" in refused
        # Everyone else is served meanwhile.
        assert is_served(served(server_address))
        hogs.pop().close()
        # Its place is given back once the server has seen the close.
        wait_until(
            lambda: is_served(served(server_address, ATTACKER)),
            timeout=10,
            what="the place of a closed connection to be given back",
        )
    finally:
        for hog in hogs:
            hog.close()


def test_websockets_count_against_the_cap_until_they_close(server_address):
    host, port = server_address
    session = login(f"http://{host}:{port}", make_user("ann"))

    async def scenario() -> None:
        sockets = [
            await ws_connect(
                session.ws_url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                additional_headers={"Cookie": session.cookie_header},
                local_addr=(ATTACKER, 0),
                proxy=None,
            )
            for _ in range(PER_ADDRESS)
        ]
        try:
            for ws in sockets:  # said hello: the init timeout leaves them open
                await ws.send('{"type": "connection_init", "payload": {}}')
                assert "connection_ack" in await asyncio.wait_for(ws.recv(), 10)
            refused = await asyncio.to_thread(served, server_address, ATTACKER)
            assert refused == b"HTTP/1.1 503 Service Unavailable"
            await sockets.pop().close()
            await asyncio.to_thread(
                wait_until,
                lambda: is_served(served(server_address, ATTACKER)),
                10,
                "the place of a closed websocket to be given back",
            )
        finally:
            for ws in sockets:
                await ws.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        session.close()


# --- websockets against uvicorn's --limit-concurrency, and their own cap (issue 21) ---
HTTP_LIMIT = 4
WS_CAP = 6


@pytest.fixture(scope="module", params=sorted(GUARDED_PROTOCOLS))
def crowded_server(request, django_db_setup, django_db_blocker, redis_url):
    """A server whose ``--limit-concurrency`` is below its websocket cap."""
    with serve_project(
        django_db_blocker,
        redis_url,
        http=GUARDED_PROTOCOLS[request.param],
        uvicorn_args=("--limit-concurrency", str(HTTP_LIMIT)),
        HTTP_MAX_CONNECTIONS_PER_ADDRESS="0",
        GRAPHQL_WS_MAX_SOCKETS_PER_USER="0",
        GRAPHQL_WS_MAX_SOCKETS=str(WS_CAP),
    ) as url:
        yield url


def test_websockets_leave_the_http_budget_alone_and_have_a_cap_of_their_own(crowded_server):
    """uvicorn counted open websockets against --limit-concurrency: a process holding that
    many subscribers answered every HTTP request (status callbacks included) 503, while
    it still accepted websockets. Now HTTP is served beside WS_CAP websockets (more than
    HTTP_LIMIT), and one websocket more is refused with 503 until one closes."""
    host, port = crowded_server.removeprefix("http://").split(":")
    address = (host, int(port))
    session = login(crowded_server, make_user("bea"))

    async def open_socket():
        ws = await ws_connect(
            session.ws_url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            additional_headers={"Cookie": session.cookie_header},
            proxy=None,
        )
        await ws.send('{"type": "connection_init", "payload": {}}')
        assert "connection_ack" in await asyncio.wait_for(ws.recv(), 10)
        return ws

    async def refused_status() -> int | None:
        try:
            ws = await open_socket()
        except InvalidStatus as exc:
            return exc.response.status_code
        await ws.close()
        return None

    async def scenario() -> None:
        sockets = [await open_socket() for _ in range(WS_CAP)]
        try:
            for _ in range(HTTP_LIMIT):  # one at a time: within the HTTP budget
                assert is_served(await asyncio.to_thread(served, address))
            assert await refused_status() == 503
            await sockets.pop().close()
            await asyncio.to_thread(
                wait_until,
                lambda: asyncio.run(refused_status()) is None,
                10,
                "the place of a closed websocket to be given back",
            )
        finally:
            for ws in sockets:
                await ws.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        session.close()
