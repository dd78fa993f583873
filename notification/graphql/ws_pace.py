"""How fast a websocket may talk, and how long it may stay silent before it says hello.

* **Message rate** (``GRAPHQL_WS_MESSAGE_RATE`` messages per second, with a burst
  of ``MESSAGE_BURST_SECONDS`` times that): every client message costs the
  server a JSON decode and a dispatch (a ``ping`` about 0.5 ms of CPU), and
  nothing else bounds how many a socket sends. A token bucket lets a page open
  its subscriptions at once and answer keep-alives for ever, and closes a socket
  that keeps sending faster (4429, "Too many messages").
* **connection_init wait** (``GRAPHQL_WS_INIT_TIMEOUT`` seconds): strawberry
  closes a ``graphql-transport-ws`` socket that has not sent ``connection_init``
  in time (4408), but not a legacy ``graphql-ws`` one: an idle legacy socket
  held a connection (and a place under ``--limit-concurrency``) for ever. The
  consumer passes the same timeout to strawberry and closes a legacy socket
  with the same code.
"""

import json
import time

#: A full bucket holds this many seconds of the sustained rate.
MESSAGE_BURST_SECONDS = 5
#: Close codes: graphql-transport-ws' own for the init timeout; 4429 (HTTP's 429 in
#: the range RFC 6455 leaves to applications) for a socket sending too fast.
CLOSE_INIT_TIMEOUT = 4408
CLOSE_TOO_MANY_MESSAGES = 4429


class MessageBucket:
    """A token bucket: ``rate`` messages per second, ``rate * MESSAGE_BURST_SECONDS`` at once.

    ``rate`` 0 lets everything through. Time is ``time.monotonic``: a clock step
    neither empties nor fills it.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = rate * MESSAGE_BURST_SECONDS
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        """Take one message's token; False when the socket has none left."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def is_connection_init(text_data: str) -> bool:
    """Whether a client message is ``connection_init`` (a cheap test before JSON)."""
    if "connection_init" not in text_data:
        return False
    try:
        message = json.loads(text_data)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "connection_init"
