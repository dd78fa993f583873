"""Status callbacks' publishes, coalesced: one Redis batch for the callbacks that overlap.

Each status callback published its change on its own (``events.publish_payloads``:
a pipeline per call reading the groups' members, one more storing the messages
when there are subscribers). Under a burst of callbacks those round trips were
about a fifth of the server's event-loop time (README, "Profiling notes"), while
``publish_payloads`` takes any number of payloads in the same two round trips.

So a callback's payloads join a batch: when no batch is in flight it starts one at
once (no added latency for a lone callback); while one is in flight, the callbacks
arriving meanwhile wait for it and go out together in the next one, right after it
(at most one Redis round trip later). Every caller still returns only once its own
payloads were published (the webhook answers Twilio after the publish, as before).

Order: batches go out one after the other, in arrival order, and a batch holds at
most one change per notification (a second one starts the next batch). Within a
batch the channel layer stores every message with one timestamp, the score of its
sorted set, so two changes of one notification in one batch reached subscribers in
the order of their bytes (``delivered`` before ``sent``: a test caught it); across
batches the later one has the later score. So a notification's subscribers hear its
changes in the order their callbacks were applied (concurrent publishes, each on its
own connection, did not promise even that).

``publish_payloads`` never raises (it logs), so a batch's failure is each of its
callbacks' logged failure, never a 500. State is per event loop (the test client
runs each request in a loop of its own).
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from notification.loops import PerLoop
from notification.status.events import publish_payloads


@dataclass
class _Batch:
    """Payloads to publish together, at most one per notification, and their callers."""

    notifications: set[str] = field(default_factory=set)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    callers: list["asyncio.Future[None]"] = field(default_factory=list)

    def settle(self, published: bool) -> None:
        for caller in self.callers:
            if caller.done():  # cancelled: its client went away
                continue
            if published:
                caller.set_result(None)
            else:
                caller.cancel()


class _Batches:
    """One event loop's batches waiting to go out, and the task publishing them."""

    def __init__(self) -> None:
        self.waiting: list[_Batch] = []
        self.drainer: asyncio.Task[None] | None = None

    def join(self, payloads: list[dict[str, Any]], caller: "asyncio.Future[None]") -> None:
        notifications = {payload["notification_id"] for payload in payloads}
        if not self.waiting or self.waiting[-1].notifications & notifications:
            self.waiting.append(_Batch())
        batch = self.waiting[-1]
        batch.notifications |= notifications
        batch.payloads += payloads
        batch.callers.append(caller)

    async def drain(self) -> None:
        batch: _Batch | None = None
        try:
            while self.waiting:
                batch = self.waiting.pop(0)
                await publish_payloads(batch.payloads)
                batch.settle(published=True)
                batch = None
        finally:
            # Cancelled (the loop shutting down): nobody waits for ever.
            for left in [batch, *self.waiting]:
                if left is not None:
                    left.settle(published=False)
            self.waiting = []
            self.drainer = None


_batches = PerLoop(_Batches)


async def publish_coalesced(payloads: list[dict[str, Any]]) -> None:
    """Publish ``payloads`` with whatever other callbacks publish meanwhile; never raises."""
    if not payloads:
        return
    batches = _batches.get()
    loop = asyncio.get_running_loop()
    published: asyncio.Future[None] = loop.create_future()
    batches.join(payloads, published)
    if batches.drainer is None:
        batches.drainer = loop.create_task(batches.drain())
    # A cancelled caller leaves its payloads in the batch: the change is committed,
    # and its subscribers must hear of it all the same.
    await asyncio.shield(published)
