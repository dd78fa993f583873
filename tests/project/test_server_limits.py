"""The web server's limits (issue 10): the same flags everywhere, and each one enforced.

``devstack.subprocesses.SERVER_LIMITS`` is the one list; the Procfile's ``web``
line and the README's deploy command must pass it too. The live checks run
uvicorn exactly as the tests and benchmarks start it (``uvicorn_command``).
"""

import asyncio
import importlib.util
import json
import logging
import select
import socket
import sys

import pytest
from websockets.exceptions import ConnectionClosed

from devstack.subprocesses import GUARDED_PROTOCOLS, SERVER_LIMITS
from tests.graphql.ws.test_subscriptions_ws import login, make_user, run
from tests.support.fixtures_services import REPO_ROOT
from tests.support.live_support import TransportWsClient, serve_project

BODY_LIMIT = 10_000
FLAGS = " ".join(SERVER_LIMITS)


def test_the_procfile_web_server_has_the_limits():
    web = next(
        line
        for line in (REPO_ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    assert FLAGS in web


def test_the_readme_deploy_command_has_the_limits():
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert "uvicorn config.asgi:application" in readme
    assert FLAGS in readme


@pytest.fixture(scope="module", params=sorted(GUARDED_PROTOCOLS))
def live_server_url(request, django_db_setup, django_db_blocker, redis_url):
    """The server once with each guarded protocol (httptools has no head-size limit
    of its own: the guard's must hold as h11's does)."""
    with serve_project(
        django_db_blocker,
        redis_url,
        http=GUARDED_PROTOCOLS[request.param],
        DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE=str(BODY_LIMIT),
        # The application's own message check is off: what is seen is uvicorn's.
        GRAPHQL_WS_MAX_MESSAGE_BYTES="0",
    ) as url:
        yield url


def raw_request(base_url: str, data: bytes) -> bytes:
    """Send ``data`` as is on a fresh connection; what the server answers (until it closes)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def post(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    return ("\r\n".join([*head, *headers, "", ""])).encode() + body


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(live_server_url):
    body = b"x" * (BODY_LIMIT + 1)
    answer = raw_request(live_server_url, post("/graphql/", body, f"Content-Length: {len(body)}"))
    assert status_of(answer) == 413, answer


def test_a_chunked_body_growing_past_the_limit_is_413(live_server_url):
    chunk = b"y" * 4_000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    answer = raw_request(live_server_url, post("/graphql/", chunks, "Transfer-Encoding: chunked"))
    assert status_of(answer) == 413, answer


def test_a_body_under_the_limit_reaches_the_application(live_server_url):
    body = json.dumps({"query": "{ __typename }"}).encode()
    answer = raw_request(live_server_url, post("/graphql/", body, f"Content-Length: {len(body)}"))
    assert status_of(answer) not in (413, 500), answer  # CSRF or GraphQL decides


def send_in_pieces(base_url: str, data: bytes, piece: int = 1024) -> bytes:
    """``data`` sent ``piece`` bytes at a time, stopping once the server answers; the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        try:
            for start in range(0, len(data), piece):
                conn.sendall(data[start : start + piece])
                if select.select([conn], [], [], 0.05)[0]:
                    break  # answered: stop before the server's close resets the socket
            while chunk := conn.recv(65536):
                answer += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return answer


def test_a_request_head_over_16_kib_is_refused_before_its_end_and_the_server_keeps_serving(
    live_server_url,
):
    """The limit bounds what a server buffers of a head not yet complete (h11's
    ``max_incomplete_event_size``; httptools buffers a header line however long, so the
    guard counts for it): a header line that grows past 16 KiB is refused before it ends."""
    big = "X-Padding: " + "p" * 20_000
    request = f"GET /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{big}\r\n\r\n".encode()
    answer = send_in_pieces(live_server_url, request)
    assert status_of(answer) == 400, answer[:200]  # served, it would be 200
    ok = raw_request(live_server_url, b"GET /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status_of(ok) == 200


def test_a_head_under_16_kib_is_served(live_server_url):
    padding = "X-Padding: " + "p" * 12_000
    request = f"GET /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{padding}\r\n\r\n".encode()
    assert status_of(send_in_pieces(live_server_url, request)) == 200


@pytest.mark.django_db(transaction=True)
def test_the_server_closes_a_websocket_message_over_its_max_size(live_server_url):
    ann = make_user("ann")
    session = login(live_server_url, ann)

    async def scenario():
        ws = await TransportWsClient.connect(session.ws_url, session.cookie_header)
        await ws.ws.send("x" * 70_000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.ws.recv(), 10)
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
        assert closed.value.sent is None or closed.value.sent.code in (1009, 1006)

    try:
        run(scenario())
    finally:
        session.close()


def test_without_httptools_the_served_name_is_the_h11_guard_and_says_so(monkeypatch, caplog):
    """A host missing httptools still starts the Procfile's command, with every rule
    (the h11 guard, tested live above), and its log says why it is slower."""
    monkeypatch.setitem(sys.modules, "httptools", None)  # import httptools fails
    monkeypatch.delitem(sys.modules, "uvicorn.protocols.http.httptools_impl", raising=False)
    spec = importlib.util.find_spec("notification.http_guard")
    assert spec is not None and spec.loader is not None
    guard = importlib.util.module_from_spec(spec)
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        spec.loader.exec_module(guard)
    assert issubclass(guard.GuardedHttpToolsProtocol, guard.GuardedH11Protocol)
    assert "httptools is not installed" in caplog.text
