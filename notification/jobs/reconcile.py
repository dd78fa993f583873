"""The reconciliation job: one pass (``notification.reconciliation``) every
``SMS_RECONCILE_INTERVAL`` seconds (default 900).

The project's schedule declaration (the top-level ``jobs`` package) registers
``notification.jobs.reconcile.reconcile_sms`` with rq-scheduler at
``reconcile_interval()``. Overlapping passes are harmless: every change a pass
makes is a guarded UPDATE (forward-only statuses, adoption only of ``unknown``
rows, a resend only of a row still ``unknown`` with the same request start), so
two passes at once decide the same and apply it once.

Last run (was ``notification.jobs.last_run``):

When the last scheduled send run finished: written by the run, read by ``/metrics``.

Kept in the SMS queue's Redis (one key, no expiry) rather than in process
memory, so ``sms_last_run_timestamp_seconds`` survives restarts of the worker
and of the web process that reports it, and every web process on every host
reports the same value. It is what the "sender stopped" alert watches: no run
finished for two intervals while messages are due. Losing the write (Redis down)
costs only freshness of that figure, never the run.
"""

import logging
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from notification.conf import app_settings
from notification.reconciliation.passes import reconcile
from notification.send.wake import sms_connection

# -------- last_run ----------------------------------------------------------------------

logger = logging.getLogger("notification.send")

LAST_RUN_KEY = "sms:last-run-finished"
#: The last scheduled reconciliation pass's end (``sms_reconcile_last_pass_timestamp_seconds``).
LAST_RECONCILE_KEY = "sms:last-reconcile-finished"


def record_run_finished(
    connection: Redis, at: float | None = None, key: str = LAST_RUN_KEY
) -> None:
    """Store ``at`` (Unix time, default now) as the last run's end; never raises."""
    try:
        connection.set(key, repr(time.time() if at is None else at))
    except RedisError as exc:
        logger.warning("%s could not be recorded: %s", key, type(exc).__name__)


def last_run_finished(connection: Redis, key: str = LAST_RUN_KEY) -> float | None:
    """The last run's end (Unix time), or ``None`` when no run has recorded one."""
    return _as_time(connection.get(key))


def last_runs_finished(connection: Redis, *keys: str) -> dict[str, float | None]:
    """Several keys' times in one round trip (``/metrics``)."""
    return dict(zip(keys, map(_as_time, connection.mget(keys)), strict=True))


def _as_time(raw: bytes | str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


# -------- reconcile ---------------------------------------------------------------------

RECONCILE_JOB_ID = "sms-reconcile"
RECONCILE_FUNC = "notification.jobs.reconcile.reconcile_sms"


def reconcile_interval() -> int:
    """Seconds between scheduled passes (``SMS_RECONCILE_INTERVAL``)."""
    return int(app_settings.SMS_RECONCILE_INTERVAL)


def reconcile_sms() -> dict[str, Any]:
    """One reconciliation pass now; returns its counts (kept in Redis as the job's result).

    The decisions are in the log (one ``sms_reconcile_decision`` line each) and on
    the notifications, not in the result: a pass may make hundreds.
    """
    report = reconcile()
    if not report.skipped:  # what the "reconciliation stopped" alert watches
        record_run_finished(sms_connection(), key=LAST_RECONCILE_KEY)
    result = report.as_dict()
    result.pop("decisions")
    return result
