"""A backend that keeps messages in memory, for tests (like Django's locmem email backend).

``outbox`` is a module-level list: every message sent in this process is
appended, whichever thread sent it. Tests empty it between cases. Messages are
answered as ``sent`` (nothing will ever report a later status), so they do not
count against the sender's queue estimate.

It also answers lookups (``fetch``/``find``) from ``provider_records``, what
"the provider" holds, so a host project's tests can exercise reconciliation:
``set_provider_status`` changes what a later fetch reports, and
``lookups_unavailable`` makes every lookup fail as an outage would.
"""

import threading
import uuid
from dataclasses import replace
from datetime import datetime

from django.utils import timezone

from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    LookupUnavailable,
    OutgoingSms,
    ProviderMessage,
)
from notification.conf import app_settings

outbox: list[OutgoingSms] = []
#: What the provider knows, by sid: one record per message sent in this process.
provider_records: dict[str, ProviderMessage] = {}
#: Set to make every lookup raise ``LookupUnavailable`` (the provider is unreachable).
lookups_unavailable = threading.Event()
_lock = threading.Lock()


def fake_sid() -> str:
    """A unique sid shaped like Twilio's (``SM`` + 32 hex digits), across processes too."""
    return "SM" + uuid.uuid4().hex


def set_provider_status(sid: str, status: str) -> None:
    """What the provider reports for ``sid`` from now on (e.g. ``delivered``)."""
    with _lock:
        provider_records[sid] = replace(provider_records[sid], status=status)


def reset() -> None:
    """Forget every message (call between tests)."""
    with _lock:
        outbox.clear()
        provider_records.clear()
    lookups_unavailable.clear()


class LocmemBackend(BaseSmsBackend):
    supports_lookup = True

    def send(self, message: OutgoingSms) -> Accepted:
        sid = fake_sid()
        now = timezone.now()
        sender = app_settings.TWILIO_MESSAGING_SERVICE_SID or app_settings.TWILIO_FROM_NUMBER
        record = ProviderMessage(
            sid=sid,
            status="sent",
            to=message.to,
            from_number=app_settings.TWILIO_FROM_NUMBER,
            messaging_service_sid=sender if sender.startswith("MG") else "",
            body=message.body,
            date_created=now,
            date_sent=now,
        )
        with _lock:
            outbox.append(message)
            provider_records[sid] = record
        return Accepted(sid=sid, status="sent", segments=message.segments)

    def fetch(self, sid: str) -> ProviderMessage | None:
        if lookups_unavailable.is_set():
            raise LookupUnavailable("locmem lookups are switched off")
        with _lock:
            return provider_records.get(sid)

    def find(self, *, to: str, sender: str, sent_after: datetime) -> list[ProviderMessage]:
        if lookups_unavailable.is_set():
            raise LookupUnavailable("locmem lookups are switched off")
        with _lock:
            records = list(provider_records.values())
        return [
            record
            for record in reversed(records)
            if record.to == to
            and sender in (record.from_number, record.messaging_service_sid)
            and record.date_sent is not None
            and record.date_sent >= sent_after
        ]
