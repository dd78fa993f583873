"""uvicorn's HTTP protocols with the limits they lack: a request-head deadline, a per-address cap.

Served as ``uvicorn --http notification.http_guard:GuardedHttpToolsProtocol``
(the ``Procfile``, the README's deploy command, the tests' and benches'
servers): uvicorn's httptools protocol (llhttp, a C parser: about half the
server's CPU per request of the pure-Python h11 one, README "Benchmarks").
``GuardedH11Protocol`` is the same guard over uvicorn's h11 protocol; it stays
importable for deployments that name it. The rules are written once
(``_Guard``); each protocol only says where its parser is in a request head.
If httptools cannot be imported, ``GuardedHttpToolsProtocol`` is the h11 one
and says so in the log (an ERROR at import): every rule still holds, only the
cost per request differs.

Without them, 4,100 TCP connections that send nothing, opened in under half a
second from one machine, took every place under ``--limit-concurrency``: every
other client got 503 until the attacker let go, and none was ever closed
(uvicorn has no timeout before a connection's first request;
``--timeout-keep-alive`` starts only after a response). Three sockets sending
one header byte per second were never closed either (slow loris).

* **Request-head deadline** (``HTTP_HEAD_TIMEOUT`` seconds, default 10): a
  connection must deliver a complete request head (request line and headers)
  within that time of opening, and each later request on a kept-alive
  connection within that time of its first byte. Otherwise it is closed: with
  ``408 Request Timeout`` when part of a head arrived, silently when nothing
  did. One deadline for the whole head, not a per-read timeout, so a head sent a
  byte at a time is closed as surely as a silent one. Bodies and websockets are
  not timed here (the body limit and the websocket limits hold them).
* **Request-head size** (uvicorn's ``--h11-max-incomplete-event-size``, 16 KiB
  in ``SERVER_LIMITS``): h11 enforces it itself; httptools has no such limit and
  buffers a header line however long, so the httptools protocol counts the
  bytes received while a head is incomplete and answers ``400`` and closes past
  it (the same flag, so one value holds for both).
* **Connections per client address** (``HTTP_MAX_CONNECTIONS_PER_ADDRESS``,
  default 256, per server process; IPv6 addresses counted per /64, what one
  host usually holds): one more is answered ``503`` with ``connection: close``
  and closed before it is read, so one machine cannot take the whole
  concurrency budget. Open websockets count until they close. Behind a reverse
  proxy every connection comes from the proxy's address: set it to 0 there and
  let the proxy limit per client (README "Security").

* **Open websockets per process** (``GRAPHQL_WS_MAX_SOCKETS``, default 15,000):
  the handshake of one more is answered ``503`` with ``connection: close``
  before the application sees it (no session lookup, no consumer), so a flood of
  upgrades is refused as cheaply as a flood of connections.
* **``--limit-concurrency`` counts HTTP only.** uvicorn counts every open
  connection *and* every open websocket against it, and checks it only for
  plain HTTP requests (an upgrade is never refused by it): a process holding
  4,096 subscribers answered every status callback and every API request 503,
  while the next websocket was still accepted. Here the protocol compares the
  limit with the HTTP connections and request tasks only (``_HttpOnly``), so it
  bounds concurrent HTTP work as its name says, and ``GRAPHQL_WS_MAX_SOCKETS``
  bounds websockets. (A first version raised the limit by the websockets held:
  when 10,000 sockets closed at once, their consumers' tasks outlived the
  connections and the status callbacks got 503 meanwhile.) Everything stays in
  uvicorn's own sets, which its shutdown walks.

All read the Django settings (``notification.conf``) per connection; 0 turns
each off. Counts are per process: uvicorn's workers do not share them.
"""

import asyncio
import ipaddress
import logging
from collections import Counter
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http.h11_impl import H11Protocol

from notification.conf import app_settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed (it is a dependency: pyproject.toml)
    HttpToolsProtocol = None  # type: ignore[assignment, misc]


def _plain_response(status: bytes, text: bytes) -> bytes:
    """A whole HTTP/1.1 response that closes the connection (written before the parser runs)."""
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: " + str(len(text)).encode() + b"\r\n\r\n" + text
    )


_REQUEST_TIMEOUT = _plain_response(
    b"408 Request Timeout", b"The request head did not arrive in time."
)
_TOO_MANY_CONNECTIONS = _plain_response(
    b"503 Service Unavailable", b"Too many connections from your address."
)
_TOO_MANY_WEBSOCKETS = _plain_response(
    b"503 Service Unavailable", b"This server holds as many websockets as it may."
)

#: Open connections (HTTP and websocket) per client address key, in this process.
_open_per_address: Counter = Counter()


#: Websockets this process holds (upgraded through a guarded protocol, not yet lost).
_open_websockets = 0


def open_websockets() -> int:
    """Websockets this process holds (for tests and benches)."""
    return _open_websockets


def address_key(host: str) -> str:
    """The unit the cap counts: an IPv4 address, or the /64 network of an IPv6 one."""
    if ":" not in host:
        return host
    try:
        return str(ipaddress.ip_network(f"{host}/64", strict=False))
    except ValueError:
        return host


def open_connections(host: str) -> int:
    """Connections this process holds from ``host`` (for tests and benches)."""
    return _open_per_address[address_key(host)]


class _HttpOnly:
    """One of uvicorn's shared sets (open connections, running tasks), as HTTP protocols
    see it: what they add and discard goes to the shared set, and ``len`` counts only
    that, not the websockets (their protocols and ASGI tasks, which uvicorn keeps in
    the same sets, until a closed socket's consumer has finished too)."""

    __slots__ = ("_mine", "_shared")

    def __init__(self, shared: set) -> None:
        self._shared = shared
        self._mine: set = set()

    def add(self, item: Any) -> None:
        self._mine.add(item)
        self._shared.add(item)

    def discard(self, item: Any) -> None:
        if item in self._mine:
            self._mine.discard(item)
            self._shared.discard(item)

    def __len__(self) -> int:
        return len(self._mine)


_views: dict[int, tuple[set, _HttpOnly]] = {}


def _http_only(shared: Any) -> Any:
    """The one ``_HttpOnly`` view of ``shared`` (all protocols of the server share it)."""
    if isinstance(shared, _HttpOnly):
        return shared
    entry = _views.get(id(shared))
    if entry is None or entry[0] is not shared:
        entry = _views[id(shared)] = (shared, _HttpOnly(shared))
    return entry[1]


class _Guard:
    """The rules of the module docstring, once, for any of uvicorn's HTTP protocols.

    Mixed in before the protocol class. The protocol tells it two things about its
    parser: whether a request head has begun and not ended (``_head_partial``) and
    whether the connection waits for a head at all (``_head_awaited``); and it arms
    the deadline when a head begins (``_head_begins``) and cancels it when the head
    is in (``_head_complete``).
    """

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None
    connections: Any
    tasks: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn compares --limit-concurrency with the lengths of these two sets:
        # views that count only what HTTP protocols put in them (module docstring).
        self.connections = _http_only(self.connections)
        self.tasks = _http_only(self.tasks)
        self._head_timer: asyncio.TimerHandle | None = None
        self._address: str | None = None
        self._refused = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if self.client is not None:
            key = address_key(self.client[0])
            cap = app_settings.HTTP_MAX_CONNECTIONS_PER_ADDRESS
            if cap and _open_per_address[key] >= cap:
                self._refused = True
                transport.write(_TOO_MANY_CONNECTIONS)
                transport.close()
                return
            _open_per_address[key] += 1
            self._address = key
        self._head_begins()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_complete()
        self._release()
        super().connection_lost(exc)  # type: ignore[misc]

    def handle_websocket_upgrade(self, *args: Any) -> None:
        """Refuse one websocket over ``GRAPHQL_WS_MAX_SOCKETS``, count the others until lost."""
        global _open_websockets
        self._head_complete()
        cap = app_settings.GRAPHQL_WS_MAX_SOCKETS
        if cap and _open_websockets >= cap:
            self.transport.write(_TOO_MANY_WEBSOCKETS)
            self.transport.close()  # connection_lost (ours) releases the address
            return
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]
        # The websocket protocol owns the transport now and this protocol hears no
        # more of it: release the address and the websocket's place when the
        # websocket's connection ends.
        _open_websockets += 1
        protocol = self.transport.get_protocol()
        websocket_lost = protocol.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            global _open_websockets
            _open_websockets -= 1
            self._release()
            websocket_lost(exc)

        protocol.connection_lost = connection_lost  # type: ignore[method-assign]

    def _head_partial(self) -> bool:
        """Part of a request head has arrived, not all of it (the parser's to say)."""
        raise NotImplementedError

    def _head_awaited(self) -> bool:
        """No request head is complete and unanswered: the deadline applies."""
        raise NotImplementedError

    def _head_begins(self) -> None:
        """Start the head deadline (a connection opened, or a later request's first byte)."""
        timeout = app_settings.HTTP_HEAD_TIMEOUT
        if timeout and self._head_timer is None:
            self._head_timer = self.loop.call_later(timeout, self._head_timed_out)

    def _head_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._head_awaited():
            return
        if self._head_partial():  # say why
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def _release(self) -> None:
        if self._address is None:
            return
        _open_per_address[self._address] -= 1
        if _open_per_address[self._address] <= 0:
            del _open_per_address[self._address]
        self._address = None


class GuardedH11Protocol(_Guard, H11Protocol):
    """``H11Protocol`` with the module's limits (h11 limits the head's size itself)."""

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.conn.their_state is h11.IDLE:
            self._head_begins()  # a new request on a kept-alive connection (no-op if armed)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_complete()  # the head is in

    def _head_partial(self) -> bool:
        return bool(self.conn.trailing_data[0])

    def _head_awaited(self) -> bool:
        return self.conn.their_state is h11.IDLE


_log = logging.getLogger("uvicorn.error")

if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """``HttpToolsProtocol`` with the module's limits, the head's size included.

        ``_in_head``: no head is complete since the last request ended (or the
        connection opened); ``_head_bytes`` counts what arrived meanwhile. llhttp
        reports a head's first byte (``on_message_begin``) and its end
        (``on_headers_complete``), which bound the deadline exactly.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            size = self.config.h11_max_incomplete_event_size
            self._max_head = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE if size is None else size
            self._in_head = True
            self._head_begun = False
            self._head_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            over = self._in_head and self._head_bytes > self._max_head
            if over and not self.transport.is_closing():
                _log.warning("Request head over %d bytes.", self._max_head)
                self.send_400_response("Request head too large.")

        def on_message_begin(self) -> None:
            self._head_begun = True
            self._head_begins()  # a later request's first byte (no-op if armed)
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = self._head_begun = False
            self._head_complete()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head, self._head_bytes = True, 0
            super().on_message_complete()

        def _head_partial(self) -> bool:
            return self._head_begun

        def _head_awaited(self) -> bool:
            return self._in_head

else:
    _log.error(
        "httptools is not installed: notification.http_guard.GuardedHttpToolsProtocol "
        "serves with the h11 parser (the same limits, more CPU per request). "
        "Install httptools (a dependency of this app) to serve with it."
    )

    class GuardedHttpToolsProtocol(GuardedH11Protocol):  # type: ignore[no-redef]
        """httptools is missing: the h11 protocol under this name (logged at import)."""
