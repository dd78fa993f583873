"""The RQ job rq-scheduler enqueues every ``TWILIO_SMS_INTERVAL`` seconds (and ``wake``
enqueues when a HIGH notification is due): one locked, paced run, then the prices
Twilio reported for recently finished messages (a few fetches, time-boxed). (The
sweep of expired idempotency keys that used to follow it is its own scheduled job
now: ``notification.jobs.idempotency``.)

A run paces sends for up to one interval (``notification.send.run``) and
ends early enough that the next scheduled run never overlaps it: its deadline
is the next scheduled time read from rq-scheduler, less a stop margin. The lock
lives until just before that next run, so a worker killed mid-run leaves a lock
that expires in time for the next run to take over (recovery releases its
claims as for any dead batch). An overlapping run returns at once and logs it.
Exactly-once sending does not depend on this lock: it comes from the row claims.
"""

import logging
import time
from typing import Any

from django.utils import timezone

from notification.conf import app_settings
from notification.guardrails.costs import record_reported_prices
from notification.jobs.reconcile import record_run_finished
from notification.jobs.schedule import next_scheduled_run
from notification.send.run import RunReport, run_paced
from notification.send.wake import WakeSignal, batch_lock, sms_connection

logger = logging.getLogger("notification.send")


def stop_margin(interval: float) -> float:
    """Seconds a run leaves free before the next scheduled run: a twentieth of the
    interval, between 1 and 5 s (a last top-up and the job's own start-up fit in it)."""
    return min(5.0, max(1.0, interval / 20))


def run_window(now: float | None = None) -> tuple[float, float]:
    """(seconds this run may pace, seconds its lock lives), counted from ``now`` (Unix time).

    Up to the next scheduled run less the stop margin; the lock outlives the run
    by half the margin and expires before the next scheduled run. Without a
    schedule (or with one overdue: rq-scheduler not running) a run lasts one interval.
    """
    now = time.time() if now is None else now
    interval = float(app_settings.TWILIO_SMS_INTERVAL)
    margin = stop_margin(interval)
    next_run = next_scheduled_run()
    until_next = interval
    if next_run is not None and next_run > now:
        until_next = min(interval, next_run - now)
    return until_next - margin, max(1.0, until_next - margin / 2)


def send_sms_batch() -> dict[str, Any]:
    """Run one paced run unless another run holds the lock; returns what happened.

    After releasing the lock it runs again when a HIGH wake-up arrived that the
    run did not consume (it came as the run was ending), while time is left.
    """
    connection = sms_connection()
    signal = WakeSignal(connection)
    signal.job_started()
    total: RunReport | None = None
    while True:
        run_seconds, lock_seconds = run_window()
        deadline = time.monotonic() + run_seconds
        with batch_lock(connection, timeout=lock_seconds) as acquired:
            if not acquired:
                logger.info('sms_batch skipped=overlap reason="another batch run holds the lock"')
                if total is None:
                    return {"skipped": "another batch run holds the lock"}
                break
            run = run_paced(deadline=deadline, waiter=signal)
        logger.info(run.log_line())
        record_run_finished(connection)
        total = run if total is None else total.merge(run)
        if not signal.pending() or time.monotonic() >= deadline:
            break
    report = total.as_dict()
    try:
        # Within half the stop margin: the next scheduled run is not delayed by it.
        seconds = stop_margin(float(app_settings.TWILIO_SMS_INTERVAL)) / 2
        report["reported_prices"] = record_reported_prices(timezone.now(), seconds=seconds)
    except Exception:  # never fail the run for a bookkeeping step
        logger.exception("sms reported prices not recorded")
    return report
