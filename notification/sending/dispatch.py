"""Concurrent create requests through the official ``twilio`` SDK.

A thread pool of ``TWILIO_SMS_CONCURRENCY`` threads keeps that many requests in
flight, so a 100-message batch at 200 ms latency takes ~2.5 s instead of 20 s.
Each thread has its own SDK client (its own ``requests`` session and
connection pool): sessions are not documented as thread-safe, and a shared pool
smaller than the concurrency would open and discard connections.

Threads never touch the database: they return ``SendOutcome`` values and the
caller writes them all at once (see ``results``). Right before each request
leaves, the thread records its start (``record_start``, the batch's
``DispatchLog`` in Redis); when that fails, or the SDK client cannot even be
built (bad settings), the request never leaves and the outcome is a retryable
failure: nothing reached Twilio, so sending it later cannot duplicate it.
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from notification.backends.twilio.client import sender_kwargs
from notification.backends.twilio.failures import FailureKind, SendFailure, classify_exception
from notification.conf import app_settings

STATUS_CALLBACK_PATH = "/twilio/sms/status/"


@dataclass(frozen=True, slots=True)
class SendRequest:
    sms_id: int
    to: str
    body: str
    segments: int


@dataclass(frozen=True, slots=True)
class SendOutcome:
    request: SendRequest
    finished_at: datetime
    sid: str = ""
    status: str = ""
    segments: int = 0
    failure: SendFailure | None = None


def status_callback_url() -> str:
    return app_settings.PUBLIC_BASE_URL.rstrip("/") + STATUS_CALLBACK_PATH


def current_sender() -> str:
    """The sender key: the Messaging Service SID when set, else the From number."""
    return app_settings.TWILIO_MESSAGING_SERVICE_SID or app_settings.TWILIO_FROM_NUMBER


def _segments_from(response_value: Any, ours: int) -> int:
    """Twilio's ``num_segments`` (a string), or ours when it says 0 (Messaging Services)."""
    try:
        theirs = int(response_value)
    except (TypeError, ValueError):
        theirs = 0
    return theirs if theirs > 0 else ours


class Dispatcher:
    """Sends requests with bounded concurrency; never raises for a single message."""

    def __init__(
        self,
        concurrency: int,
        client_factory: Callable[[], Any],
        record_start: Callable[[int], None] | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self._client_factory = client_factory
        self._record_start = record_start
        self._local = threading.local()
        self._common = {
            **sender_kwargs(),
            "status_callback": status_callback_url(),
            "validity_period": app_settings.TWILIO_SMS_VALIDITY_PERIOD,
        }

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._client_factory()
        return client

    def _not_sent(self, request: SendRequest, message: str) -> SendOutcome:
        failure = SendFailure(FailureKind.RETRYABLE, None, message)
        return SendOutcome(request, timezone.now(), failure=failure)

    def send_one(self, request: SendRequest) -> SendOutcome:
        # Both steps before the request can fail without anything leaving.
        try:
            client = self._client()
        except Exception as exc:
            return self._not_sent(
                request, f"Could not set up the Twilio client: {type(exc).__name__}: {exc}"
            )
        if self._record_start is not None:
            try:
                self._record_start(request.sms_id)
            except Exception as exc:
                return self._not_sent(request, f"Not sent: {exc}")
        try:
            message = client.messages.create(to=request.to, body=request.body, **self._common)
        except Exception as exc:  # one bad message never stops the batch
            return SendOutcome(request, timezone.now(), failure=classify_exception(exc))
        return SendOutcome(
            request,
            timezone.now(),
            sid=message.sid,
            status=str(message.status or "queued"),
            segments=_segments_from(message.num_segments, request.segments),
        )

    def send_all(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        if not requests:
            return []
        workers = min(self.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sms-send") as pool:
            return list(pool.map(self.send_one, requests))
