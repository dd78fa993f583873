"""The app's Prometheus counters, histograms and live gauges: one line to record each event.

Everything a process *does* (a Twilio request, a status callback, a subscription
opening) is counted here, where it happens; what the database *holds* (rows by
status, the backlog) is read at scrape time by ``notification.ops.metrics``.
Call sites use the small functions below, never the metric objects, so a metric
can change shape (labels, buckets) in this one module.

Multi-process: prometheus-client chooses how values are stored when it is first
imported. With ``PROMETHEUS_MULTIPROC_DIR`` set, every process (web, RQ worker
and its forked job processes) writes its values to files in that directory and
the web process's ``/metrics`` adds them up, so a worker's Twilio requests show
at the web process on the same host. Without it, values live in this process's
memory (a worker's counters are then invisible to the web process, but nothing
fails). Recording never raises: metrics must not break sending.
"""

import atexit
import contextlib
import os
from typing import Final

from prometheus_client import Counter, Gauge, Histogram


def _ensure_multiproc_dir() -> None:
    """Create ``PROMETHEUS_MULTIPROC_DIR`` when it is set but missing.

    prometheus-client opens its value files as metrics are defined (at import), and a
    missing directory would crash the process before it did anything: a worker or a
    command started before the directory exists must still start.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


_ensure_multiproc_dir()

#: ``outcome`` label values of ``sms_twilio_requests_total``.
ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"  # Twilio answered with an error (``code`` is its error code)
TRANSPORT_ERROR: Final = "transport_error"  # never reached Twilio: safe to retry
AMBIGUOUS: Final = "ambiguous"  # may have reached Twilio: the row becomes ``unknown``

TWILIO_REQUESTS = Counter(
    "sms_twilio_requests",
    "Message create requests to Twilio by outcome (accepted, rejected, transport_error, "
    "ambiguous) and Twilio error code (empty when there is none).",
    ["outcome", "code"],
)
TWILIO_REQUEST_DURATION = Histogram(
    "sms_twilio_request_duration_seconds",
    "Seconds a message create request to Twilio took, whatever its outcome.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
)
STATUS_CALLBACKS = Counter(
    "sms_status_callbacks",
    "Twilio status callbacks by result: applied, ignored (stale, duplicate or an unknown "
    "status), unknown_message, refused (bad or missing signature), wrong_account, malformed.",
    ["result"],
)
RECONCILE_DECISIONS = Counter(
    "sms_reconcile_decisions",
    "Decisions of reconciliation passes (not dry runs), one per row asked about: updated, "
    "unchanged, adopted, resent, failed, waiting, not_found, unavailable (Twilio could not "
    "answer; asked again next pass).",
    ["decision"],
)
# livesum: the sum over this host's live web processes (multi-process mode).
SUBSCRIBERS = Gauge(
    "sms_subscribers",
    "Open GraphQL status subscriptions (smsStatus, myNotifications) in the web processes.",
    multiprocess_mode="livesum",
)
# livesum: the sum over this host's live web processes (multi-process mode).
DIRECT_SUBSCRIBERS = Gauge(
    "sms_subscribers_direct",
    "Open status subscriptions whose events the direct send lane writes (the rest of "
    "sms_subscribers take strawberry's per-event path: a selection the lane cannot produce).",
    multiprocess_mode="livesum",
)
DIRECT_FRAME_SUBSCRIBERS = Gauge(
    "sms_subscribers_direct_frames",
    "Of sms_subscribers_direct, the subscriptions whose socket takes each change's frame "
    "bytes built once for all (uvicorn's websockets-sansio protocol, no permessage-deflate).",
    multiprocess_mode="livesum",
)


def twilio_request(outcome: str, code: int | None, seconds: float) -> None:
    """Count one create request and its duration."""
    TWILIO_REQUESTS.labels(outcome=outcome, code="" if code is None else str(code)).inc()
    TWILIO_REQUEST_DURATION.observe(max(seconds, 0.0))


def status_callback(result: str) -> None:
    """Count one status callback by what became of it."""
    STATUS_CALLBACKS.labels(result=result).inc()


def reconcile_decision(decision: str, rows: int = 1) -> None:
    """Count what a reconciliation pass decided for ``rows`` rows."""
    RECONCILE_DECISIONS.labels(decision=decision).inc(rows)


def subscription_opened() -> None:
    SUBSCRIBERS.inc()


def subscription_closed() -> None:
    SUBSCRIBERS.dec()


def direct_subscription_opened(shared_frames: bool) -> None:
    DIRECT_SUBSCRIBERS.inc()
    if shared_frames:
        DIRECT_FRAME_SUBSCRIBERS.inc()


def direct_subscription_closed(shared_frames: bool) -> None:
    DIRECT_SUBSCRIBERS.dec()
    if shared_frames:
        DIRECT_FRAME_SUBSCRIBERS.dec()


def _forget_live_gauges() -> None:
    """On a clean exit, drop this process's live gauges from the shared directory.

    Without it, a restarted web process would keep counting the subscribers of
    the process it replaced (counters are kept: their totals must not go down).
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(os.getpid())


atexit.register(_forget_live_gauges)
