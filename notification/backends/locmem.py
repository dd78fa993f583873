"""A backend that keeps messages in memory, for tests (like Django's locmem email backend).

``outbox`` is a module-level list: every message sent in this process is
appended, whichever thread sent it. Tests empty it between cases. Messages are
answered as ``sent`` (nothing will ever report a later status), so they do not
count against the sender's queue estimate.
"""

import threading
import uuid

from notification.backends.base import Accepted, BaseSmsBackend, OutgoingSms

outbox: list[OutgoingSms] = []
_lock = threading.Lock()


def fake_sid() -> str:
    """A unique sid shaped like Twilio's (``SM`` + 32 hex digits), across processes too."""
    return "SM" + uuid.uuid4().hex


class LocmemBackend(BaseSmsBackend):
    def send(self, message: OutgoingSms) -> Accepted:
        with _lock:
            outbox.append(message)
        return Accepted(sid=fake_sid(), status="sent", segments=message.segments)
