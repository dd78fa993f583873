"""Status callbacks' publishes, coalesced: one Redis batch for the callbacks that overlap.

Each status callback published its change on its own (``events.publish_payloads``:
a pipeline per call reading the groups' members, one more storing the messages
when there are subscribers). Under a burst of callbacks those round trips were
about a fifth of the server's event-loop time (README, "Profiling notes"), while
``publish_payloads`` takes any number of payloads in the same two round trips.

So a callback's payloads join the next flush (``loops.Coalesced``, the same mechanism
as the send job's dispatch-log records): when none is in flight one starts at once
(no added latency for a lone callback); while one is in flight, the callbacks
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

from typing import Any

from notification.loops import Coalesced, PerLoop
from notification.status.events import publish_payloads

Payloads = list[dict[str, Any]]


async def _publish_in_order(callers: list[Payloads]) -> None:
    """One flush's payloads, in arrival order, in as few batches as keep at most one
    change per notification in each."""
    batch: Payloads = []
    notifications: set[str] = set()
    for payloads in callers:
        mine = {payload["notification_id"] for payload in payloads}
        if notifications & mine:
            await publish_payloads(batch)
            batch, notifications = [], set()
        batch += payloads
        notifications |= mine
    await publish_payloads(batch)


_flushes = PerLoop(lambda: Coalesced(_publish_in_order))


async def publish_coalesced(payloads: Payloads) -> None:
    """Publish ``payloads`` with whatever other callbacks publish meanwhile; never raises.

    A cancelled caller (its client went away) leaves its payloads in the flush: the
    change is committed, and its subscribers must hear of it all the same.
    """
    if payloads:
        await _flushes.get()(payloads)
