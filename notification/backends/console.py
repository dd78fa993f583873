"""A backend that prints each message, for development without the Twilio emulator."""

import sys
import threading
from typing import TextIO

from notification.backends.base import Accepted, BaseSmsBackend, OutgoingSms
from notification.backends.locmem import fake_sid

_lock = threading.Lock()  # one message's lines stay together


class ConsoleBackend(BaseSmsBackend):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: OutgoingSms) -> Accepted:
        stream = self.stream or sys.stdout
        sid = fake_sid()
        with _lock:
            stream.write(
                f"SMS {sid} to {message.to} ({message.segments} segment(s)):\n{message.body}\n"
                + "-" * 40
                + "\n"
            )
            stream.flush()
        return Accepted(sid=sid, status="sent", segments=message.segments)
