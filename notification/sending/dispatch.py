"""Concurrent sends through the configured SMS backend (``notification.backends``).

A thread pool of ``TWILIO_SMS_CONCURRENCY`` threads keeps that many requests in
flight, so a batch waits for the slowest of a few round trips at a time
instead of one round trip per message (README, "Benchmarks").
Each thread has its own backend instance (for Twilio, its own SDK client with
its own ``requests`` session and connection pool): sessions are not documented
as thread-safe, and a shared pool smaller than the concurrency would open and
discard connections.

The threads are one pool per process, kept from batch to batch (``shared_pool``):
a pool per batch started eight threads, eight SDK clients and eight TCP
connections to Twilio for every batch (README, "Benchmarks").

Threads never touch the database: they return ``SendOutcome`` values and the
caller writes them all at once (see ``results``). Right before each request
leaves, the thread records its start (``record_start``, the batch's
``DispatchLog`` in Redis); when that fails, or the SDK client cannot even be
built (bad settings), the request never leaves and the outcome is a retryable
failure: nothing reached the provider, so sending it later cannot duplicate it.
An exception from the backend's ``send`` is ambiguous: the message may have left.
"""

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from notification.backends import get_backend
from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    FailureKind,
    OutgoingSms,
    SendFailure,
)
from notification.conf import app_settings
from notification.delivery.reports import STATUS_CALLBACK_ROUTE, STATUS_CALLBACK_SMS_PARAM


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
    """Where Twilio posts status callbacks: the route of ``notification.urls``, wherever
    the project includes it, on ``PUBLIC_BASE_URL``."""
    return app_settings.PUBLIC_BASE_URL.rstrip("/") + reverse(STATUS_CALLBACK_ROUTE)


def message_status_callback_url(base: str, sms_id: int) -> str:
    """``base`` naming one message (``?sms=<id>``): its callbacks say which row they are
    about even when the create's answer, and so the sid, was lost (``tracking.adopt``)."""
    return f"{base}?{STATUS_CALLBACK_SMS_PARAM}={sms_id}" if base else base


def current_sender() -> str:
    """The sender key: the Messaging Service SID when set, else the From number."""
    return app_settings.TWILIO_MESSAGING_SERVICE_SID or app_settings.TWILIO_FROM_NUMBER


_pool_lock = threading.Lock()
#: (process id, size, executor): a forked process (an RQ work horse) makes its own.
_pool: tuple[int, int, ThreadPoolExecutor] | None = None


def shared_pool(size: int) -> ThreadPoolExecutor:
    """This process's sending threads, ``size`` of them, created on first use.

    Kept for the life of the process so each thread keeps its SDK client and its
    keep-alive connection (``backends.twilio.client``). A different size (the
    setting changed) replaces the pool; the old one finishes what it was given.
    The threads never hold a database connection, so idle ones cost nothing.
    """
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != size:
            old = _pool
            executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sms-send")
            _pool = (os.getpid(), size, executor)
            if old is not None and old[0] == os.getpid():
                old[2].shutdown(wait=False)
        return _pool[2]


class Dispatcher:
    """Sends requests with bounded concurrency; never raises for a single message."""

    def __init__(
        self,
        concurrency: int,
        backend_factory: Callable[[], BaseSmsBackend] = get_backend,
        record_start: Callable[[int], None] | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self._backend_factory = backend_factory
        self._record_start = record_start
        self._local = threading.local()
        self._status_callback = status_callback_url()
        self._validity_period = int(app_settings.TWILIO_SMS_VALIDITY_PERIOD)

    def _backend(self) -> BaseSmsBackend:
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = self._local.backend = self._backend_factory()
        return backend

    def _not_sent(self, request: SendRequest, message: str) -> SendOutcome:
        failure = SendFailure(FailureKind.RETRYABLE, None, message)
        return SendOutcome(request, timezone.now(), failure=failure)

    def send_one(self, request: SendRequest) -> SendOutcome:
        # Both steps before the request can fail without anything leaving.
        try:
            backend = self._backend()
        except Exception as exc:
            return self._not_sent(
                request, f"Could not set up the SMS backend: {type(exc).__name__}: {exc}"
            )
        if self._record_start is not None:
            try:
                self._record_start(request.sms_id)
            except Exception as exc:
                return self._not_sent(request, f"Not sent: {exc}")
        message = OutgoingSms(
            to=request.to,
            body=request.body,
            segments=request.segments,
            status_callback=message_status_callback_url(self._status_callback, request.sms_id),
            validity_period=self._validity_period,
        )
        try:
            result = backend.send(message)
        except Exception as exc:  # one bad message never stops the batch
            result = SendFailure(
                FailureKind.AMBIGUOUS,
                None,
                f"Unexpected error while sending: {type(exc).__name__}: {exc}",
            )
        if isinstance(result, SendFailure):
            return SendOutcome(request, timezone.now(), failure=result)
        assert isinstance(result, Accepted)
        return SendOutcome(
            request, timezone.now(), sid=result.sid, status=result.status, segments=result.segments
        )

    def send_all(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        if not requests:
            return []
        return list(shared_pool(self.concurrency).map(self.send_one, requests))
