"""Helpers for live-status tests against real processes: uvicorn, websockets, GraphQL over HTTP.

- ``run_uvicorn(env)``: ``config.asgi:application`` in a uvicorn subprocess, on a
  socket bound here first (port 0, handed over with ``--fd``), so the port is
  known before the server starts (``PUBLIC_BASE_URL`` needs it) and never raced.
- ``HttpSession``: logs in through the ``login`` mutation with Django's CSRF
  token, like a browser frontend; its cookies open authenticated websockets.
- ``TransportWsClient`` / ``LegacyWsClient``: minimal ``graphql-transport-ws``
  and ``graphql-ws`` clients on the ``websockets`` package.
- ``run_worker(env)``: one send batch, run by a real RQ worker process.
"""

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import django_rq
import httpx
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from devstack.subprocesses import bound_socket, stop_process, uvicorn_command
from notification.conf import app_settings
from tests.support.waiting import STARTUP_TIMEOUT_SECONDS, wait_until
from tests.support.webhook_helpers import AUTH_TOKEN as WEBHOOK_AUTH_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPHQL_PATH = "/graphql/"
STATUS_FIELDS = "notificationId status deliveryStatus errorCode errorMessage at"
SMS_STATUS_SUBSCRIPTION = (
    f"subscription Watch($ids: [ID!]) {{ smsStatus(notificationIds: $ids) {{ {STATUS_FIELDS} }} }}"
)
MY_NOTIFICATIONS_SUBSCRIPTION = f"subscription {{ myNotifications {{ {STATUS_FIELDS} }} }}"


@contextmanager
def serve_project(
    django_db_blocker: Any,
    redis_url: str,
    uvicorn_args: tuple[str, ...] = (),
    http: str | None = None,
    **overrides: str,
) -> Iterator[str]:
    """uvicorn serving the project on the test database and Redis; yields its base URL.

    ``overrides`` are extra environment variables (limits set low for a test module);
    ``uvicorn_args`` extra flags (a later flag wins over the production limits');
    ``http`` another ``--http`` protocol class than the limits' (``uvicorn_command``).
    """
    import os

    from tests.support.fixtures_services import database_url_for_subprocesses

    sock = bound_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with django_db_blocker.unblock():
        database_url = database_url_for_subprocesses()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_DEBUG": "0",
        "PUBLIC_BASE_URL": base_url,
        "TWILIO_AUTH_TOKEN": WEBHOOK_AUTH_TOKEN,
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        **overrides,
    }
    with run_uvicorn(env, sock, *uvicorn_args, http=http) as url:
        assert url == base_url
        yield url


@contextmanager
def run_uvicorn(
    env: dict[str, str], sock: socket.socket | None = None, *args: str, http: str | None = None
) -> Iterator[str]:
    """Serve ``config.asgi:application``; yields the base URL. Always stopped afterwards."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    log = tempfile.NamedTemporaryFile(prefix="uvicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        uvicorn_command(sock, *args, http=http),
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=(sock.fileno(),),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process, Path(log.name))
        yield base_url
    finally:
        stop_process(process)
        sock.close()
        log.close()


def run_worker(env: dict[str, str], sent: int = 1) -> None:
    """Enqueue the batch job as rq-scheduler would, and let a real RQ worker run it."""
    django_rq.get_queue(app_settings.SMS_QUEUE_NAME).enqueue("notification.jobs.sms.send_sms_batch")
    result = subprocess.run(
        [sys.executable, "manage.py", "sms_worker", "--burst"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"sent={sent}" in output, output


def server_log(base_url_log: Path) -> str:
    return base_url_log.read_text(errors="replace")[-4000:]


def _wait_until_serving(base_url: str, process: subprocess.Popen, log: Path) -> None:
    def serving() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}: {server_log(log)}")
        try:
            httpx.get(base_url + GRAPHQL_PATH, timeout=2, trust_env=False)
        except httpx.TransportError:
            return False
        return True

    try:
        wait_until(serving, timeout=STARTUP_TIMEOUT_SECONDS, what="uvicorn serving")
    except AssertionError:
        raise RuntimeError(f"uvicorn did not start: {server_log(log)}") from None


class HttpSession:
    """A logged-in browser-like session: cookies plus the CSRF header on POSTs."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=30, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if "csrftoken" not in self.client.cookies:
            self.client.get(GRAPHQL_PATH, headers={"Accept": "text/html"})
        response = self.client.post(
            GRAPHQL_PATH,
            json={"query": query, "variables": variables or {}},
            headers={"X-CSRFToken": self.client.cookies["csrftoken"]},
        )
        assert response.status_code == 200, (response.status_code, response.text[:2000])
        return response.json()

    def login(self, username: str, password: str) -> "HttpSession":
        result = self.graphql(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id } }",
            {"u": username, "p": password},
        )
        assert not result.get("errors"), result
        assert "sessionid" in self.client.cookies
        return self

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.client.cookies.items())

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + GRAPHQL_PATH


async def open_socket(
    ws_url: str,
    protocol: str,
    cookie: str | None = None,
    origin: str | None = None,
    compression: str | None = "deflate",
) -> ClientConnection:
    """``compression`` None: no permessage-deflate offered (as the Procfile's server)."""
    headers = {"Cookie": cookie} if cookie else {}
    return await connect(
        ws_url,
        subprotocols=[Subprotocol(protocol)],
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        compression=compression,
        open_timeout=10,
        max_queue=None,
        proxy=None,
    )


class TransportWsClient:
    """``graphql-transport-ws``: connection_init/ack, subscribe, next/error/complete."""

    protocol = "graphql-transport-ws"
    # The two protocols differ only in these message type names (and keep-alives).
    subscribe_type = "subscribe"
    result_type = "next"

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self._ids = 0

    @classmethod
    async def connect(
        cls, ws_url: str, cookie: str | None = None, compression: str | None = "deflate"
    ) -> "TransportWsClient":
        client = cls(await open_socket(ws_url, cls.protocol, cookie, compression=compression))
        await client.ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = await client.receive()
        assert ack["type"] == "connection_ack", ack
        return client

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] != "pong":
                return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op_id = str(self._ids)
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": self.subscribe_type,
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return op_id

    async def next_event(self, timeout: float = 10) -> dict[str, Any]:
        """The next result payload's single field (fails on errors)."""
        message = await self.receive(timeout)
        assert message["type"] == self.result_type, message
        assert not message["payload"].get("errors"), message
        return next(iter(message["payload"]["data"].values()))

    async def close(self) -> None:
        await self.ws.close()


class LegacyWsClient(TransportWsClient):
    """Legacy ``graphql-ws`` (subscriptions-transport-ws): start/data/error, "ka" keep-alives."""

    protocol = "graphql-ws"
    subscribe_type = "start"
    result_type = "data"

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] != "ka":
                return message
