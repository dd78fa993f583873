"""The emulator's HTTP server and its lifecycle (used in-process by tests and by the command).

``ThreadingHTTPServer`` with HTTP/1.1 keep-alive: each SDK connection gets one
thread for its lifetime, so a pool of 8 sending threads costs 8 server threads and
no reconnects. Nagle is off so a response never waits for a delayed ACK.
"""

import base64
import binascii
import contextlib
import hmac
import json
import logging
import re
import select
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from twilio_emulator import control, errors, pricing
from twilio_emulator.callbacks import (
    CallbackSender,
    inbound_sms_params,
    post_signed,
    status_callback_params,
)
from twilio_emulator.resources import date_sent_filter, message_page, message_resource
from twilio_emulator.scheduler import Scheduler
from twilio_emulator.state import DeliveryStep, EmulatorConfig, EmulatorState, Fault
from twilio_emulator.validation import validate_create

logger = logging.getLogger(__name__)

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
MESSAGE_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$"
)
PRICING_PATH = re.compile(r"^/v1/Messaging/Countries/(?P<iso>[^/]+)$")
DEFAULT_TIMEOUT_HOLD_MS = 60_000
INBOUND_TIMEOUT_SECONDS = 15


class EmulatorServer:
    """A Twilio-compatible API on ``host:port`` (port 0 picks a free one).

    ``start()`` serves from a background thread and returns at once;
    ``stop()`` closes the listener and every open connection.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        config: EmulatorConfig | None = None,
    ) -> None:
        self.state = EmulatorState(account_sid, auth_token, config or EmulatorConfig())
        self.scheduler = Scheduler()
        self.callbacks = CallbackSender(auth_token)
        self.stopping = threading.Event()
        # Bumped by ``release_held()``: a held answer ends when it changes.
        self.release_generation = 0
        self._httpd = _HttpServer((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def account_sid(self) -> str:
        return self.state.account_sid

    @property
    def auth_token(self) -> str:
        return self.state.auth_token

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "EmulatorServer":
        self.scheduler.start()
        self.callbacks.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="twilio-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.close_connections()
        self._httpd.server_close()
        self.scheduler.stop()
        self.callbacks.stop()

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- operations used by the handler and the control API -------------------
    def requests_in_progress(self) -> int:
        """Requests received and not yet answered (idle keep-alive connections do not
        count). Zero after killing a client means each request it had sent is logged."""
        with self._httpd.connections_lock:
            return self._httpd.requests_in_progress

    def release_held(self) -> None:
        """Answer every create request a ``timeout`` fault is holding, now.

        Lets a test keep requests in flight for exactly as long as it needs
        (e.g. to see that several are in flight at once) instead of a guessed hold time.
        """
        self.release_generation += 1

    def configure(self, values: dict[str, Any]) -> None:
        """Apply ``POST /_emulator/config`` values (``ValueError`` names a bad one)."""
        config = self.state.configure(values)
        self.callbacks.set_paused(config.callbacks_paused)

    def reset(self) -> None:
        self.release_held()  # nothing held by an earlier test outlives it
        self.state.reset()
        self.scheduler.clear()
        self.callbacks.reset()
        self.callbacks.set_paused(self.state.config.callbacks_paused)

    def schedule(self, sid: str, steps: list[DeliveryStep], generation: int) -> None:
        for step in steps:
            self.scheduler.call_at(step.at, lambda s=step: self._apply(sid, s, generation))

    def _apply(self, sid: str, step: DeliveryStep, generation: int) -> None:
        message = self.state.apply_step(sid, step, generation)
        if message is None or not message.status_callback:
            return
        if self.state.config.callbacks_enabled:
            self.callbacks.submit(sid, message.status_callback, status_callback_params(message))

    def post_inbound(
        self, *, from_: str, to: str, body: str, url: str, messaging_service_sid: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Post a signed incoming-SMS webhook now and report how the receiver answered."""
        params = inbound_sms_params(self.account_sid, from_, to, body, messaging_service_sid)
        try:
            with requests.Session() as session:
                response = post_signed(
                    session, self.auth_token, url, params, timeout=INBOUND_TIMEOUT_SECONDS
                )
        except requests.RequestException as exc:
            return 502, {"error": f"inbound webhook to {url} failed: {exc}", "params": params}
        return 200, {
            "status": response.status_code,
            "body": response.text,
            "content_type": response.headers.get("Content-Type", ""),
            "params": params,
        }


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.requests_in_progress = 0
        super().__init__(address, handler)

    def close_connections(self) -> None:
        """Shut down keep-alive connections so their handler threads end now."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Dropped(Exception):
    """Raised to leave a request without answering (the ``drop`` fault)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "TwilioEmulator/1.0"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    @property
    def emulator(self) -> EmulatorServer:
        return self.server.emulator

    # --- plumbing -------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        """The request body; a client that hung up mid-body sent no request at all.

        (A worker killed between writing the headers and the body must not show
        up as a body-less create request: Twilio would never see it either.)
        """
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise _Dropped
        return body

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: errors.TwilioApiError) -> None:
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        self._send_json(error.status, error.payload(), headers)

    def _dispatch(self) -> None:
        with self.server.connections_lock:
            self.server.requests_in_progress += 1
        try:
            self._dispatch_request()
        finally:
            with self.server.connections_lock:
                self.server.requests_in_progress -= 1

    def _dispatch_request(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            body = self._read_body()
            if url.path.startswith("/_emulator/"):
                status, payload = control.handle(self.emulator, self.command, url.path, query, body)
                self._send_json(status, payload)
                return
            self._api(url.path, query, body)
        except _Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- the Twilio API -------------------------------------------------------
    def _authenticated(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        state = self.emulator.state
        return hmac.compare_digest(username, state.account_sid) and hmac.compare_digest(
            password, state.auth_token
        )

    def _api(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        latency_ms = self.emulator.state.config.latency_ms
        if latency_ms:
            time.sleep(latency_ms / 1000)
        messages_match = MESSAGES_PATH.match(path)
        message_match = MESSAGE_PATH.match(path)
        is_create = bool(messages_match) and self.command == "POST"
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        try:
            if not self._authenticated():
                raise errors.authentication_failed()
            pricing_match = PRICING_PATH.match(path)
            if pricing_match and self.command == "GET":
                self._country_prices(pricing_match["iso"], path)
                return
            match = messages_match or message_match
            if match is None or match["account"] != self.emulator.account_sid:
                raise errors.not_found(path)
            if is_create:
                self._create(form)
            elif messages_match and self.command == "GET":
                messages = self.emulator.state.list_messages(
                    to=(query.get("To") or [None])[0],
                    from_=(query.get("From") or [None])[0],
                    date_sent=date_sent_filter(query),
                )
                self._send_json(200, message_page(self.emulator.account_sid, messages, query))
            elif message_match and self.command == "GET":
                message = self.emulator.state.get_message(message_match["sid"])
                if message is None:
                    raise errors.not_found(path)
                self._send_json(200, message_resource(message))
            else:
                raise errors.method_not_allowed(self.command)
        except errors.TwilioApiError as error:
            if is_create:
                self._log_create(form, "rejected", error.status, error.code)
            self._send_error(error)

    def _country_prices(self, iso: str, path: str) -> None:
        entry = self.emulator.state.country_prices(iso)
        if entry is None:
            raise errors.not_found(path)
        name, by_type = entry
        self._send_json(200, pricing.country_resource(iso.upper(), name, by_type))

    def _log_create(
        self,
        form: dict[str, list[str]],
        outcome: str,
        http_status: int | None,
        error_code: int | None = None,
        sid: str | None = None,
    ) -> None:
        def first(name: str) -> str | None:
            return (form.get(name) or [None])[0]

        self.emulator.state.log_request(
            {
                "to": first("To"),
                "from": first("From"),
                "messaging_service_sid": first("MessagingServiceSid"),
                "body": first("Body"),
                "status_callback": first("StatusCallback"),
                "outcome": outcome,
                "http_status": http_status,
                "error_code": error_code,
                "sid": sid,
                "params": {
                    key: values[0] if len(values) == 1 else values for key, values in form.items()
                },
            }
        )

    def _create(self, form: dict[str, list[str]]) -> None:
        emulator = self.emulator
        fault = emulator.state.take_fault((form.get("To") or [None])[0])
        if fault is not None and fault.kind in ("http_429", "http_500", "http_400"):
            error = {
                "http_429": errors.too_many_requests,
                "http_500": errors.internal_error,
                "http_400": lambda: errors.rejected(fault.error_code),
            }[fault.kind]()
            self._log_create(form, fault.kind, error.status, error.code)
            self._send_error(error)
            return

        request = validate_create(form)  # raises TwilioApiError, logged by the caller
        message, steps, generation = emulator.state.create_message(request)
        emulator.schedule(message.sid, steps, generation)
        if fault is None:
            self._log_create(form, "accepted", 201, sid=message.sid)
            self._send_json(201, message_resource(message))
            return

        # The message reached Twilio and will be sent: only the answer is lost.
        self._log_create(form, fault.kind, None, sid=message.sid)
        if fault.kind == "drop":
            raise _Dropped
        if fault.kind == "reset":
            self._reset()
        self._hold(fault)
        self._send_json(201, message_resource(message))

    def _reset(self) -> None:
        """Abort the connection (TCP RST, not FIN): linger 0, then close without shutdown,
        as a crashing proxy or a NAT dropping state does; the client reads a reset."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # the fd closes (RST) once the handler's files are closed
        raise _Dropped

    def _hold(self, fault: Fault) -> None:
        """Wait past the client's timeout: until hold_ms, the client hangs up, a release
        (``POST /_emulator/release``), or shutdown."""
        hold_ms = DEFAULT_TIMEOUT_HOLD_MS if fault.hold_ms is None else fault.hold_ms
        deadline = time.monotonic() + hold_ms / 1000
        generation = self.emulator.release_generation
        while not self.emulator.stopping.is_set():
            if self.emulator.release_generation != generation:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.2))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        raise _Dropped  # the client gave up and closed the connection
                except OSError:
                    raise _Dropped from None
                return
