"""Status-change events for live subscriptions.

Every code path that changes a notification's status (the send job, the status
webhook, cancel, admin actions) calls ``notify_status_changed`` with the ids it
changed. Publishing happens after the transaction commits (subscribers read
committed state, and a rolled-back change is never announced) and never raises:
a failed publish must not undo or fail the status change itself.

Messages go through the channels layer (Redis), so a publish from an RQ worker
or the admin reaches the websocket consumers in the uvicorn process. Each
changed notification is sent to its own group (``smsStatus``) and to its
recipient's and its creator's (``myNotifications``); each message names the group
it was sent to.

Receiving (``StatusListeners``): the subscriptions of one process share a single channel
of the layer, which joins each group once however many subscriptions watch it;
one receive loop hands every message to the queues of that group's
subscriptions. Per-consumer channels would cost, for every subscriber and
every change, a trip through the layer and through the consumer's dispatch
loop, a large share of the server's CPU per change at 1,000 subscribers
(README, "Profiling notes").
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from django.db import transaction

from notification import instruments
from notification.conf import app_settings
from notification.connections import group_send_many
from notification.delivery import status_payloads
from notification.exceptions import SmsNotificationError
from notification.loops import PerLoop, process_loop
from notification.signals import send_status_changed

logger = logging.getLogger(__name__)

# Batches of group sends in flight at once per event loop, across all concurrent
# publishes: each holds a pooled connection per Redis host while it runs, and
# redis-py 8's pool *fails* (rather than waits) past its 100 connections: unbounded
# sends lost publishes that way under concurrent status callbacks (README,
# "Profiling notes").
_PUBLISH_CONCURRENCY = 32
_publish_slots = PerLoop(lambda: asyncio.Semaphore(_PUBLISH_CONCURRENCY))


def notification_group(notification_id: int | str) -> str:
    return f"sms-notification-{notification_id}"


def user_group(user_id: int | str) -> str:
    return f"sms-user-{user_id}"


def notify_status_changed(notification_ids: Iterable[int]) -> None:
    """Announce, once the current transaction commits, that these notifications changed."""
    ids = sorted({int(notification_id) for notification_id in notification_ids})
    if ids:
        transaction.on_commit(lambda: publish_status_changes(ids), robust=True)


def publish_status_changes(notification_ids: Iterable[int]) -> None:
    """Load the notifications in one query and send one message per notification and group.

    Called from synchronous code (views, RQ jobs, admin). Logs and swallows every
    failure: the status change has already been committed.
    """
    try:
        payloads = status_payloads(sorted(set(notification_ids)))
        send_status_changed(payloads)
        layer = get_channel_layer()
        if layer is None or not payloads:
            return
        asyncio.run_coroutine_threadsafe(_send_all(layer, payloads), _publisher_loop()).result()
    except Exception:
        logger.exception("Could not publish status changes for notifications %s", notification_ids)


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a daemon thread, for publishes from sync code.

    ``async_to_sync`` ran each publish in a new event loop, and the channel layer
    keeps its Redis connections per loop: every batch of the send job opened up to
    ``_PUBLISH_CONCURRENCY`` new connections (each a handshake plus redis-py's
    driver-info lookup), a fifth of a send worker's CPU (README, "Benchmarks").
    One long-lived loop keeps them (``loops.process_loop``: a forked RQ work horse
    starts its own); a connection broken by a Redis restart is replaced by
    redis-py's retry, as in the ASGI process's own loop.
    """
    return process_loop("status-publish")


async def publish_payloads(payloads: list[dict[str, Any]]) -> None:
    """Async publish of already loaded payloads (the status webhook); never raises."""
    try:
        layer = get_channel_layer()
        if layer is not None and payloads:
            await _send_all(layer, payloads)
    except Exception:
        logger.exception("Could not publish status changes %s", payloads)


async def _send_all(layer: Any, payloads: list[dict[str, Any]]) -> None:
    """Every payload to its groups, in one batch (``layer_send``: two Redis round trips
    for the lot on channels_redis' core layer, instead of up to four per group)."""
    sends = []
    for payload in payloads:
        groups = [notification_group(payload["notification_id"])]
        # Recipient and creator (``myNotifications``), once when they are the same user.
        owners = {payload["user_id"], payload.get("created_by_id")} - {None}
        groups += [user_group(owner) for owner in sorted(owners)]
        sends += [(group, {**payload, "group": group}) for group in groups]
    try:
        async with _publish_slots.get():
            await group_send_many(layer, sends)
    except Exception as exc:
        logger.error("%d status messages were not published: %r", len(sends), exc)


# --- receiving (the ASGI process) ------------------------------------------------------

RECEIVE_RETRY_SECONDS = 1.0
GROUP_REFRESH_SECONDS = 3600.0
#: Listeners offered one message between two turns of the event loop. At 10,000
#: subscribers of one notification a single pass held the loop for over 100 ms
#: (a socket write each: README, "Profiling notes"): webhooks, queries and other
#: sockets' messages waited behind it. A chunk is a few milliseconds.
DELIVER_CHUNK = 500


class ListenerDropped(SmsNotificationError):
    """The listener fell ``GRAPHQL_WS_MAX_QUEUED_EVENTS`` messages behind and was dropped."""


_DROPPED = object()


class Listener:
    """One subscription's messages: a bounded queue that ``StatusListeners`` fills.

    Bounded because a subscriber whose client stops reading would otherwise
    make the server buffer every later change for it, without limit. Past the
    bound the listener is dropped: it receives nothing more, and ``get`` raises
    ``ListenerDropped`` (after the messages already queued), so the subscription
    ends with an error and the client can resubscribe (which sends the current
    status first: nothing is silently lost).

    ``direct``, when set, is offered each message before it is queued, while nothing is
    queued: True means it has dealt with the message (the websocket lane wrote it,
    ``notification.graphql.ws.lane``), so the subscription's task is not woken at all.
    It must never raise.
    """

    __slots__ = ("_queue", "direct", "dropped")

    def __init__(self, bound: int) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=bound + 1)  # +1: the drop marker
        self.dropped = False
        self.direct: Callable[[dict[str, Any]], bool] | None = None

    def offer(self, message: dict[str, Any]) -> bool:
        """``direct`` first while nothing is queued (queued messages go first), else ``put``."""
        direct = self.direct
        if direct is not None and self._queue.empty() and direct(message):
            return True
        return self.put(message)

    def put(self, message: dict[str, Any]) -> bool:
        """Queue a message; False (and dropped from now on) once the bound is reached."""
        if self.dropped:
            return False
        if self._queue.qsize() >= self._queue.maxsize - 1:
            self.dropped = True
            self._queue.put_nowait(_DROPPED)
            return False
        self._queue.put_nowait(message)
        return True

    async def get(self) -> dict[str, Any]:
        message = await self._queue.get()
        if message is _DROPPED:
            raise ListenerDropped
        return message


class StatusListeners:
    """The group messages of this process's subscriptions and sockets, through one channel.

    One per event loop (``status_listeners()``). ``listen(groups)`` joins the
    groups this process does not watch yet (before returning, so a change
    committed afterwards cannot be missed) and gives a ``Listener`` that
    receives every message sent to them; leaving discards groups nobody watches
    any more. The same message object goes to every listener: listeners must not
    modify it. Memberships are renewed every ``GROUP_REFRESH_SECONDS``:
    channels_redis' core layer forgets a group member after a day (``group_expiry``).

    Receiving uses a layer instance of its own (``_receiving_layer``), so its
    channel's messages are popped only by ``_receive``, a task that is never
    cancelled. channels_redis pops a process's messages for all of that
    instance's channels in whichever ``receive`` call holds its receive lock,
    with ``BZPOPMIN`` then a second command that backs the message up: a
    ``receive`` cancelled in between (every websocket consumer's receive is
    cancelled when its socket closes) loses a message that may belong to
    another channel. Sharing the default instance with the consumers is how a
    subscriber missed DELIVERED while others, or the same subscriber a moment
    earlier, got their changes (issue 16). Websocket consumers therefore join no
    groups and receive nothing from the layer themselves (``ws_guard``): their
    session and user messages come through here too, and a connect storm adds
    each distinct group once, one at a time, instead of opening one Redis
    connection per socket (issue 21's ``MaxConnectionsError``).
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self._listeners: defaultdict[str, set[Listener]] = defaultdict(set)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    @contextlib.asynccontextmanager
    async def listen(
        self, groups: Iterable[str], *, subscription: bool = True
    ) -> AsyncIterator[Listener]:
        """A listener on ``groups`` until the block ends. ``subscription=False``: not a
        GraphQL subscription (a socket's guard watching its session and user), so not
        counted in ``sms_subscribers``: the gauge says how many subscriptions are open,
        not how many listeners serve them."""
        listener = Listener(app_settings.GRAPHQL_WS_MAX_QUEUED_EVENTS)
        joined: list[str] = []
        if subscription:
            instruments.subscription_opened()
        try:
            async with self._lock:
                if self.channel is None:
                    # The default prefix: channels_redis' core layer pops every
                    # process-specific channel from one key per prefix.
                    self.channel = await self.layer.new_channel()
                for group in dict.fromkeys(groups):
                    if not self._listeners.get(group):
                        await self.layer.group_add(group, self.channel)
                    self._listeners[group].add(listener)
                    joined.append(group)
                if not self._tasks or any(task.done() for task in self._tasks):
                    for task in self._tasks:
                        task.cancel()
                    self._tasks = [
                        asyncio.create_task(self._receive()),
                        asyncio.create_task(self._refresh_memberships()),
                    ]
            yield listener
        finally:
            if subscription:
                instruments.subscription_closed()
            await asyncio.shield(self._leave(joined, listener))

    def listener_count(self) -> int:
        """Distinct listeners now registered (for tests and diagnostics)."""
        return len(set().union(*self._listeners.values())) if self._listeners else 0

    async def _leave(self, groups: list[str], listener: Listener) -> None:
        async with self._lock:
            for group in groups:
                listeners = self._listeners.get(group)
                if listeners is None:
                    continue
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[group]
                    try:
                        await self.layer.group_discard(group, self.channel)
                    except Exception:
                        logger.exception("Could not leave group %s", group)

    async def _refresh_memberships(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            async with self._lock:
                for group in list(self._listeners):
                    try:
                        await self.layer.group_add(group, self.channel)
                    except Exception:
                        logger.exception("Could not renew the membership of group %s", group)

    async def _receive(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Status listener could not receive; retrying")
                await asyncio.sleep(RECEIVE_RETRY_SECONDS)
                continue
            await self.deliver_in_chunks(message)

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand a message to every listener of its group; drop listeners that fell behind."""
        listeners = self._listeners.get(message.get("group"))  # type: ignore[arg-type]
        if listeners:
            self._offer(message, tuple(listeners))

    async def deliver_in_chunks(self, message: dict[str, Any]) -> None:
        """``deliver``, letting the event loop run between chunks of ``DELIVER_CHUNK``.

        The next message is received only after this one reached every listener, so
        each listener still gets the group's messages in order. Listeners that left
        while the loop ran are skipped (their subscription has ended)."""
        group = message.get("group")
        listeners = self._listeners.get(group)  # type: ignore[arg-type]
        if not listeners:
            return
        everyone = tuple(listeners)
        self._offer(message, everyone[:DELIVER_CHUNK])
        for start in range(DELIVER_CHUNK, len(everyone), DELIVER_CHUNK):
            await asyncio.sleep(0)
            chunk = everyone[start : start + DELIVER_CHUNK]
            self._offer(message, [listener for listener in chunk if listener in listeners])

    def _offer(self, message: dict[str, Any], listeners: Iterable[Listener]) -> None:
        behind = [listener for listener in listeners if not listener.offer(message)]
        for listener in behind:
            for members in self._listeners.values():
                members.discard(listener)
        if behind:
            logger.warning(
                "Dropped %d listener(s) of %s: over GRAPHQL_WS_MAX_QUEUED_EVENTS unread",
                len(behind),
                message.get("group"),
            )


def _receiving_layer() -> Any:
    """A channel layer instance for ``StatusListeners`` alone (see its docstring).

    A Redis layer gets an instance of its own (same configuration, its own
    process channel prefix and connection pool); any other layer (in-memory,
    which lives in one instance) is used as it is.
    """
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("Live status needs a channel layer (CHANNEL_LAYERS)")
    if hasattr(layer, "client_prefix"):
        return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    return layer


def status_listeners() -> StatusListeners:
    """This event loop's ``StatusListeners`` (created on first use)."""
    return _listeners.get()


_listeners = PerLoop(lambda: StatusListeners(_receiving_layer()))
