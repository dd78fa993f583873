"""Limits and authority checks for GraphQL websockets, under any ASGI server.

``SocketGuardMixin`` goes first in the consumer's bases
(``websocket.SessionGraphQLWSConsumer``) and adds, around strawberry's consumer:

* a per-user cap on open sockets (``GRAPHQL_WS_MAX_SOCKETS_PER_USER``, counted
  per server process): past it the handshake is refused (HTTP 403);
* a cap on operations in flight per socket (``GRAPHQL_WS_MAX_SUBSCRIPTIONS``,
  strawberry's own ``max_subscriptions_per_connection``): past it the operation
  gets an error message ("Subscription limit reached"), the socket stays open;
* a message size cap (``GRAPHQL_WS_MAX_MESSAGE_BYTES``): a larger message
  closes the socket with 1009 (message too big) before it is decoded or
  parsed. The server should refuse it earlier still (uvicorn's
  ``--ws-max-size``, README "Security"); this check holds whatever the server;
* a message rate (``GRAPHQL_WS_MESSAGE_RATE``, pings included) and a wait for
  ``connection_init`` (``GRAPHQL_WS_INIT_TIMEOUT``) in both protocols
  (``ws_pace``): past them the socket is closed with 4429 or 4408;
* the socket's authority (``ws_authority``): re-checked before each operation
  a client sends, every ``GRAPHQL_WS_AUTH_RECHECK_SECONDS`` (one timer and one
  database trip per session for all its sockets, ``SessionRechecks``) and when a logout,
  a user change or a permission change is announced. A socket whose session
  ended or whose user lost a permission is closed with 4403 (Forbidden): its
  running subscriptions stop and it runs nothing more. A client reconnects and
  resubscribes with what it may still do.

The pushed logout and user-change messages reach a socket through the
process's ``StatusListeners`` (one layer channel per process, each distinct
group joined once), not through a layer channel per socket: the consumer has
no channel layer at all (``NO_CHANNEL_LAYER``). Per-socket joins opened one
Redis connection per socket in a connect storm (``MaxConnectionsError`` at
1,000 sockets), and each consumer's cancelled ``receive`` at disconnect could
lose another channel's message (``notification.status.events.StatusListeners``).

``AllowedHostsMiddleware`` refuses handshakes whose Host header is not in
``ALLOWED_HOSTS``, as Django refuses such HTTP requests (DNS rebinding would
otherwise reach the socket under any name).
"""

import asyncio
import contextlib
import datetime
import json
import logging
from collections import Counter
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from notification.conf import app_settings
from notification.connections import run_in_db_thread
from notification.graphql.ws.authority import (
    CLOSE_INIT_TIMEOUT,
    CLOSE_TOO_MANY_MESSAGES,
    SESSION_ENDED,
    USER_CHANGED,
    Authority,
    MessageBucket,
    authority_of,
    current_user_and_authority,
    is_connection_init,
    lost_authority,
    session_group,
    session_key,
    socket_user_group,
)
from notification.loops import PerLoop
from notification.status.events import ListenerDropped, status_listeners

logger = logging.getLogger(__name__)

#: Close codes: RFC 6455's "message too big", graphql-transport-ws' "Forbidden".
CLOSE_TOO_BIG = 1009
CLOSE_FORBIDDEN = 4403
#: Client messages that start an operation (graphql-transport-ws, legacy graphql-ws).
_OPERATION_TYPES = frozenset({"subscribe", "start"})

#: The consumer's ``channel_layer_alias``: no layer (see the module docstring).
NO_CHANNEL_LAYER = "notification-ws-sockets-use-no-layer"

_open_sockets: Counter = Counter()


def _limit(value: int) -> int | None:
    """A setting where 0 means "no limit"."""
    return value if value > 0 else None


class SocketGuardMixin:
    """Caps and authority re-checks for a strawberry ``GraphQLWSConsumer`` (see the module)."""

    scope: dict[str, Any]
    channel_layer_alias = NO_CHANNEL_LAYER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read per socket, so a changed setting applies to the next socket.
        kwargs["max_subscriptions_per_connection"] = _limit(
            app_settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS
        )
        init_timeout = app_settings.GRAPHQL_WS_INIT_TIMEOUT
        kwargs["connection_init_wait_timeout"] = datetime.timedelta(seconds=init_timeout)
        super().__init__(*args, **kwargs)
        self._bucket = MessageBucket(app_settings.GRAPHQL_WS_MESSAGE_RATE)
        self._init_received = False
        self._init_task: asyncio.Task | None = None
        self._counted_user: Any = None
        self._authority: Authority | None = None
        self._watch_task: asyncio.Task | None = None
        self._recheck_key: str | None | bool = False  # False: not in session_rechecks()
        self._closing = False
        self._close_sent = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        cap = _limit(app_settings.GRAPHQL_WS_MAX_SOCKETS_PER_USER)
        if user is not None and cap is not None and _open_sockets[user.pk] >= cap:
            logger.warning("Websocket refused: user %s already has %d open", user.pk, cap)
            await self.close()  # before accept(): HTTP 403
            return
        if user is not None:
            _open_sockets[user.pk] += 1
            self._counted_user = user.pk
        await super().connect()  # type: ignore[misc]
        self._init_task = asyncio.create_task(self._close_unless_initialised())
        await self._start_watching(user)

    async def disconnect(self, code: int) -> None:
        if self._recheck_key is not False:
            session_rechecks().discard(self._recheck_key, self)  # type: ignore[arg-type]
            self._recheck_key = False
        for task in (self._init_task, self._watch_task):
            if task is not None:
                task.cancel()
        if self._watch_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task  # leaves its groups
        if self._counted_user is not None:
            _open_sockets[self._counted_user] -= 1
            if _open_sockets[self._counted_user] <= 0:
                del _open_sockets[self._counted_user]
            self._counted_user = None
        await super().disconnect(code)  # type: ignore[misc]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        if not self._bucket.allow():
            logger.warning("Websocket over GRAPHQL_WS_MESSAGE_RATE: socket closed")
            await self._close(CLOSE_TOO_MANY_MESSAGES, "Too many messages")
            return
        if _too_big(text_data, bytes_data):
            logger.warning("Websocket message over GRAPHQL_WS_MAX_MESSAGE_BYTES: socket closed")
            await self._close(CLOSE_TOO_BIG, "Message too big")
            return
        if not self._init_received and text_data and is_connection_init(text_data):
            self._init_received = True
        if text_data and _starts_an_operation(text_data) and not await self._recheck():
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data)  # type: ignore[misc]

    async def _on_pushed(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == SESSION_ENDED:
            await self._close(CLOSE_FORBIDDEN, "Session ended")
        elif kind == USER_CHANGED:
            await self._recheck()

    async def _close_unless_initialised(self) -> None:
        """Both protocols: no ``connection_init`` in time, the socket is closed (4408).

        strawberry does this for graphql-transport-ws only; the legacy protocol
        waited for ever. Whichever closes first, the other finds the socket closing.
        """
        await asyncio.sleep(app_settings.GRAPHQL_WS_INIT_TIMEOUT)
        if not self._init_received:
            logger.info("Websocket closed: no connection_init within GRAPHQL_WS_INIT_TIMEOUT")
            await self._close(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout")

    # --- authority -----------------------------------------------------------------

    async def _start_watching(self, user: Any) -> None:
        if user is None or not user.is_authenticated:
            return
        key = session_key(self.scope)
        self._authority = await run_in_db_thread(authority_of, user)
        if key:
            joined = asyncio.Event()
            groups = [session_group(key), socket_user_group(user.pk)]
            self._watch_task = asyncio.create_task(self._watch_pushes(groups, joined))
            # Joined before the socket is used: a logout from now on is pushed.
            waiter = asyncio.create_task(joined.wait())
            await asyncio.wait([waiter, self._watch_task], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        interval = app_settings.GRAPHQL_WS_AUTH_RECHECK_SECONDS
        if interval > 0:
            self._recheck_key = key
            session_rechecks().add(key, self, interval)

    async def _watch_pushes(self, groups: list[str], joined: asyncio.Event) -> None:
        """Apply the session's and user's pushed messages until the socket closes."""
        while not self._closing:
            try:
                async with status_listeners().listen(groups, subscription=False) as listener:
                    joined.set()
                    while not self._closing:
                        await self._on_pushed(await listener.get())
            except ListenerDropped:
                await self._recheck()  # a flood of pushes: what they say, from the source
            except Exception:  # Redis down: the periodic re-check still applies
                joined.set()
                logger.exception("Could not watch a websocket's session for pushed changes")
                return

    async def _recheck(self) -> bool:
        """Reload the session's user; close the socket if it may do less. True if still open."""
        if self._closing:
            return False
        key = session_key(self.scope)
        user, authority = await run_in_db_thread(current_user_and_authority, key)
        return await self._apply_recheck(user, authority)

    async def _apply_recheck(self, user: Any, authority: Authority | None) -> bool:
        """Close the socket if ``authority`` (just loaded) is less than it had; else adopt it."""
        if self._closing:
            return False
        if lost_authority(self._authority, authority):
            logger.info("Websocket closed: its session ended or its user lost access")
            await self._close(CLOSE_FORBIDDEN, "Forbidden")
            return False
        # Operations from now on see the fresh user (and any permission it gained).
        self.scope["user"] = user
        self._authority = authority
        return True

    async def _close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        await self.close(code=code, reason=reason)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send the close once, whoever asks: strawberry's own init timeout, ours
        (``_close_unless_initialised``) and an authority close can race, and the ASGI
        server raises on a second ``websocket.close`` (a logged error per socket: 56
        of them in one 10,000-subscriber connect storm)."""
        if self._close_sent:
            return
        self._close_sent = True
        await super().close(code=code, reason=reason)  # type: ignore[misc]


class SessionRechecks:
    """The periodic re-check of each session, once per interval for all its sockets.

    Each socket used to re-check on a timer of its own: a database trip (session,
    user, permissions) per socket every ``GRAPHQL_WS_AUTH_RECHECK_SECONDS``. At
    10,000 sockets that was 166 trips a second on the one database thread, which
    then made every new socket wait behind them (a connect storm slowed as it
    grew). The answer only depends on the session, so sockets of one session (a
    user's tabs, up to ``GRAPHQL_WS_MAX_SOCKETS_PER_USER``) share one timer and one
    trip: each still hears within the interval, and the re-check on each
    operation and the pushed logout and user changes stay per socket and at once.
    One per event loop (``session_rechecks()``).
    """

    def __init__(self) -> None:
        self._sockets: dict[str | None, set[SocketGuardMixin]] = {}
        self._tasks: dict[str | None, asyncio.Task] = {}

    def add(self, key: str | None, socket: SocketGuardMixin, interval: float) -> None:
        self._sockets.setdefault(key, set()).add(socket)
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._run(key, interval))

    def discard(self, key: str | None, socket: SocketGuardMixin) -> None:
        sockets = self._sockets.get(key)
        if sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self._sockets[key]
            self._tasks.pop(key).cancel()

    def session_count(self) -> int:
        """Sessions with a running re-check timer (for tests)."""
        return len(self._tasks)

    async def _run(self, key: str | None, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                user, authority = await run_in_db_thread(current_user_and_authority, key)
            except Exception:  # a database hiccup: keep the sockets, try again next time
                logger.exception("Could not re-check a websocket session")
                continue
            for socket in list(self._sockets.get(key, ())):
                try:
                    await socket._apply_recheck(user, authority)
                except Exception:
                    logger.exception("Could not apply a websocket session's re-check")


_session_rechecks = PerLoop(SessionRechecks)


def session_rechecks() -> SessionRechecks:
    """This event loop's ``SessionRechecks`` (created on first use)."""
    return _session_rechecks.get()


def _too_big(text_data: str | None, bytes_data: bytes | None) -> bool:
    cap = _limit(app_settings.GRAPHQL_WS_MAX_MESSAGE_BYTES)
    if cap is None:
        return False
    if bytes_data is not None and len(bytes_data) > cap:
        return True
    if not text_data:
        return False
    # Each character is 1 to 4 bytes in UTF-8: encode only when it could matter.
    return len(text_data) > cap or (len(text_data) * 4 > cap and len(text_data.encode()) > cap)


def _starts_an_operation(text_data: str) -> bool:
    try:
        message = json.loads(text_data)
    except ValueError:
        return False  # strawberry answers malformed messages itself
    return isinstance(message, dict) and message.get("type") in _OPERATION_TYPES


class AllowedHostsMiddleware:
    """Refuses websocket handshakes for a Host that ``ALLOWED_HOSTS`` does not allow."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not _host_allowed(scope):
            logger.warning("Websocket refused: Host %r not in ALLOWED_HOSTS", _host(scope)[:100])
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})  # HTTP 403 to the client
            return None
        return await self.inner(scope, receive, send)


def _host(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return value.decode("latin1")
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server else ""


def _host_allowed(scope: dict[str, Any]) -> bool:
    """Django's own rule (``HttpRequest.get_host``), DEBUG's localhost allowance included."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(_host(scope))
    return bool(domain) and validate_host(domain, allowed)
