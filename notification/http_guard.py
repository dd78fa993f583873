"""uvicorn's h11 protocol with the limits it lacks: a request-head deadline, a per-address cap.

Served as ``uvicorn --http notification.http_guard:GuardedH11Protocol`` (the
``Procfile``, the README's deploy command, the tests' and benches' servers).

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
from collections import Counter
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from notification.conf import app_settings


def _plain_response(status: bytes, text: bytes) -> bytes:
    """A whole HTTP/1.1 response that closes the connection (written before h11 is involved)."""
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


#: Websockets this process holds (upgraded through ``GuardedH11Protocol``, not yet lost).
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


class GuardedH11Protocol(H11Protocol):
    """``H11Protocol`` with a request-head deadline and a per-address connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn compares --limit-concurrency with the lengths of these two sets:
        # views that count only what HTTP protocols put in them (module docstring).
        self.connections = _http_only(self.connections)
        self.tasks = _http_only(self.tasks)
        self._head_timer: asyncio.TimerHandle | None = None
        self._address: str | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
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
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # a new request on a kept-alive connection
        super().data_received(data)
        if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is in

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._release()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        global _open_websockets
        self._cancel_head_timer()
        cap = app_settings.GRAPHQL_WS_MAX_SOCKETS
        if cap and _open_websockets >= cap:
            self.transport.write(_TOO_MANY_WEBSOCKETS)
            self.transport.close()  # connection_lost (ours) releases the address
            return
        super().handle_websocket_upgrade(event)
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

    def _arm_head_timer(self) -> None:
        timeout = app_settings.HTTP_HEAD_TIMEOUT
        if timeout:
            self._head_timer = self.loop.call_later(timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a head arrived: say why
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def _release(self) -> None:
        if self._address is None:
            return
        _open_per_address[self._address] -= 1
        if _open_per_address[self._address] <= 0:
            del _open_per_address[self._address]
        self._address = None
