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
from collections.abc import AsyncIterator, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from notification import instruments
from notification.delivery.payload import status_payloads
from notification.signals import send_status_changed

logger = logging.getLogger(__name__)

# Group sends in flight at once per event loop, across all concurrent publishes:
# channels_redis takes one pooled connection per send, and redis-py 8's pool
# *fails* (rather than waits) past its 100 connections: unbounded sends lost
# publishes that way under concurrent status callbacks (README, "Profiling notes").
_PUBLISH_CONCURRENCY = 32
_publish_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


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
        async_to_sync(_send_all)(layer, payloads)
    except Exception:
        logger.exception("Could not publish status changes for notifications %s", notification_ids)


async def publish_payloads(payloads: list[dict[str, Any]]) -> None:
    """Async publish of already loaded payloads (the status webhook); never raises."""
    try:
        layer = get_channel_layer()
        if layer is not None and payloads:
            await _send_all(layer, payloads)
    except Exception:
        logger.exception("Could not publish status changes %s", payloads)


def _loop_publish_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    semaphore = _publish_slots.get(loop)
    if semaphore is None:
        for closed in [other for other in _publish_slots if other.is_closed()]:
            del _publish_slots[closed]
        semaphore = _publish_slots[loop] = asyncio.Semaphore(_PUBLISH_CONCURRENCY)
    return semaphore


async def _send_all(layer: Any, payloads: list[dict[str, Any]]) -> None:
    semaphore = _loop_publish_slots()

    async def send(group: str, payload: dict[str, Any]) -> None:
        async with semaphore:
            await layer.group_send(group, payload)

    sends = []
    for payload in payloads:
        groups = [notification_group(payload["notification_id"])]
        # Recipient and creator (``myNotifications``), once when they are the same user.
        owners = {payload["user_id"], payload.get("created_by_id")} - {None}
        groups += [user_group(owner) for owner in sorted(owners)]
        sends += [send(group, {**payload, "group": group}) for group in groups]
    results = await asyncio.gather(*sends, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        logger.error(
            "%d of %d status messages were not published: %r",
            len(failures),
            len(results),
            failures[0],
        )


# --- receiving (the ASGI process) ------------------------------------------------------

RECEIVE_RETRY_SECONDS = 1.0
GROUP_REFRESH_SECONDS = 3600.0


class StatusListeners:
    """The status messages of this process's subscriptions, through one layer channel.

    One per event loop (``status_listeners()``). ``listen(groups)`` joins the
    groups this process does not watch yet (before returning, so a change
    committed afterwards cannot be missed) and gives a queue that receives
    every message sent to them; leaving discards groups nobody watches any more.
    The same message object goes to every queue: listeners must not modify it.
    Memberships are renewed every ``GROUP_REFRESH_SECONDS``: channels_redis'
    core layer forgets a group member after a day (``group_expiry``).
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self._queues: defaultdict[str, set[asyncio.Queue]] = defaultdict(set)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    @contextlib.asynccontextmanager
    async def listen(self, groups: Iterable[str]) -> AsyncIterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue()
        joined: list[str] = []
        instruments.subscription_opened()
        try:
            async with self._lock:
                if self.channel is None:
                    # The default prefix: channels_redis' core layer pops every
                    # process-specific channel from one key per prefix.
                    self.channel = await self.layer.new_channel()
                for group in dict.fromkeys(groups):
                    if not self._queues.get(group):
                        await self.layer.group_add(group, self.channel)
                    self._queues[group].add(queue)
                    joined.append(group)
                if not self._tasks or any(task.done() for task in self._tasks):
                    for task in self._tasks:
                        task.cancel()
                    self._tasks = [
                        asyncio.create_task(self._receive()),
                        asyncio.create_task(self._refresh_memberships()),
                    ]
            yield queue
        finally:
            instruments.subscription_closed()
            await asyncio.shield(self._leave(joined, queue))

    async def _leave(self, groups: list[str], queue: asyncio.Queue) -> None:
        async with self._lock:
            for group in groups:
                listeners = self._queues.get(group)
                if listeners is None:
                    continue
                listeners.discard(queue)
                if not listeners:
                    del self._queues[group]
                    try:
                        await self.layer.group_discard(group, self.channel)
                    except Exception:
                        logger.exception("Could not leave group %s", group)

    async def _refresh_memberships(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            async with self._lock:
                for group in list(self._queues):
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
            for queue in tuple(self._queues.get(message.get("group"), ())):
                queue.put_nowait(message)


_listeners: dict[asyncio.AbstractEventLoop, StatusListeners] = {}


def status_listeners() -> StatusListeners:
    """This event loop's ``StatusListeners`` (created on first use)."""
    loop = asyncio.get_running_loop()
    listeners = _listeners.get(loop)
    if listeners is None:
        for stale in [other for other in _listeners if other.is_closed()]:
            del _listeners[stale]
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("Live status needs a channel layer (CHANNEL_LAYERS)")
        listeners = _listeners[loop] = StatusListeners(layer)
    return listeners
