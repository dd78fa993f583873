"""The rq-scheduler process ``sms_scheduler`` runs: it keeps the declared schedule
in Redis and rides out a Redis outage instead of quitting.

rq-scheduler's ``run`` has no error handling: its first ``ConnectionError`` (a
heartbeat during a Redis restart) ended the process. ``SmsScheduler.run`` is
the same poll loop (birth, heartbeat, lock, enqueue due jobs, sleep) with two
additions:

* a lost Redis is logged once (``RedisOutage``), retried with a bounded
  backoff, and the loop resumes (with a new scheduler name: a Redis that kept
  its data still holds the old, never-ended registration);
* under the scheduler lock, before enqueueing due jobs, ``sync_schedule`` adds
  every declared entry that Redis lacks (all of them at start-up, replacing
  changed ones), so an emptied Redis heals within one poll plus one interval.

Exiting is left to what cannot be survived in-process (any other exception):
it propagates, the command exits non-zero and a supervisor restarts it.
"""

import logging
import signal
import time
from contextlib import suppress
from typing import Any
from uuid import uuid4

from django_rq.queues import DjangoScheduler

from notification.jobs.schedule import sync_schedule
from notification.processes.outage import REDIS_DOWN, RedisOutage

logger = logging.getLogger("notification.processes")


class SmsScheduler(DjangoScheduler):
    """django-rq's scheduler with a poll loop that survives Redis outages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = RedisOutage("scheduler")
        self._synced_at_start = False

    def _install_signal_handlers(self) -> None:
        """Stop on SIGINT/SIGTERM; the goodbye to Redis is skipped when Redis is gone."""

        def stop(signum: int, frame: object) -> None:
            self.log.info("Shutting down RQ scheduler...")
            with suppress(*REDIS_DOWN):
                self.register_death()
                self.remove_lock()
            raise SystemExit()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def keep_schedule(self) -> None:
        """Make Redis hold the declared schedule (replace all once, then add missing)."""
        changed = sync_schedule(self, replace=not self._synced_at_start)
        if changed and self._synced_at_start:
            logger.warning(
                "sms_schedule healed=%s (missing from Redis: registered again)",
                ",".join(entry.id for entry in changed),
            )
        elif changed:
            logger.info("sms_schedule registered=%s", ",".join(entry.id for entry in changed))
        self._synced_at_start = True

    def poll_once(self, burst: bool) -> bool:
        """One poll under the lock; returns True when a burst run is done."""
        self.heartbeat()
        if not self.acquire_lock():
            self.log.warning("Lock already taken - skipping run")
            return False
        self.keep_schedule()
        self.enqueue_jobs()
        self.heartbeat()
        self.remove_lock()
        return burst

    def run(self, burst: bool = False) -> None:
        self._install_signal_handlers()
        born = False
        try:
            while True:
                started = time.time()
                try:
                    if not born:
                        self.register_birth()
                        born = True
                    if self.poll_once(burst):
                        break
                    self.outage.recovered()
                except REDIS_DOWN as error:
                    self.outage.lost(error)
                    self._lock_acquired = False  # it expires by itself in Redis
                    if born:  # our registration, if Redis kept it, stays "alive"
                        self.name, born = uuid4().hex, False
                    # PING until it answers: quiet, unlike a birth attempt per retry.
                    self.outage.wait_until_up(self.connection.ping, stop=lambda: False)
                    continue
                elapsed = time.time() - started
                if elapsed < self._interval:
                    time.sleep(self._interval - elapsed)
        finally:
            with suppress(*REDIS_DOWN):
                self.remove_lock()
                self.register_death()
