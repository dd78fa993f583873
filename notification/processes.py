"""The long-running processes' classes: the RQ worker and rq-scheduler, made to ride out
a Redis outage (``worker``, ``scheduler``; the shared outage log and backoff in ``outage``).

Above the jobs layer (the scheduler keeps the declared schedule, ``notification.jobs``)
and below the management commands that start them.

Outage (was ``notification.processes.outage``):

A Redis outage as the long-running processes see it: one log line when it starts,
one when it ends, and a bounded backoff between reconnection attempts.

Without this the worker and the scheduler either died on the first
``ConnectionError`` (nothing sent until a person restarted them) or, where rq
already retries, logged a line per retry. ``RedisOutage`` is the one place that
says "Redis is gone" and "Redis is back"; ``RetryLogFilter`` silences rq's own
per-retry lines while an outage is already logged.

Scheduler (was ``notification.processes.scheduler``):

The rq-scheduler process ``sms_scheduler`` runs: it keeps the declared schedule
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

Worker (was ``notification.processes.worker``):

The RQ worker ``sms_worker`` runs: it rides out a Redis outage instead of quitting.

rq's own worker retries only while it waits for a job; a ``ConnectionError``
anywhere else (its heartbeat while a job runs, the job's bookkeeping after it,
the suspension check) ends up in its catch-all, which logs "found an unhandled
exception, quitting..." and returns: nothing was sent until a person restarted
it. ``SmsWorker`` turns a lost Redis into a quiet stop of rq's work loop
(``StopRequested``), waits for Redis with a bounded backoff (one log line when
it goes, one when it is back: ``RedisOutage``), and enters the loop again.

A job running when Redis vanished is not killed: the parent keeps waiting for
its work horse (heartbeats that fail are skipped), so the batch in flight
finishes and writes its results to the database. Nothing is sent twice: what a
batch may send is decided by its row claims in the database, never by Redis.
Whatever else ends the loop without a stop request (any other exception) is
reported by ``stopped_unexpectedly`` so the command exits non-zero for its
supervisor.
"""

import functools
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar
from uuid import uuid4

from django_rq.queues import DjangoScheduler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.exceptions import StopRequested
from rq.worker import Worker

from notification.jobs.schedule import sync_schedule

# -------- processes ---------------------------------------------------------------------


# -------- outage ------------------------------------------------------------------------

#: What an unreachable Redis raises (redis-py's ``BusyLoadingError`` while a
#: restarted Redis loads its data is a ``ConnectionError`` too).
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)

#: Longest wait between two reconnection attempts: how late, at most, a process
#: notices that Redis is back (the README's deployment section states it).
MAX_RECONNECT_SECONDS = 2.0
FIRST_RECONNECT_SECONDS = 0.1

logger = logging.getLogger("notification.processes")


class RedisOutage:
    """Tracks whether Redis is reachable for one process and logs each change once."""

    def __init__(self, process: str, log: logging.Logger = logger) -> None:
        self.process = process
        self.log = log
        self.down_since: float | None = None
        self.delay = FIRST_RECONNECT_SECONDS

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, error: BaseException) -> None:
        """Redis failed: log it if this starts an outage (not on every retry)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.delay = FIRST_RECONNECT_SECONDS
            self.log.warning(
                'redis_outage process=%s state=lost error="%s" '
                "(reconnecting every %.0f s at most; work resumes when it is back)",
                self.process,
                error,
                MAX_RECONNECT_SECONDS,
            )

    def recovered(self) -> None:
        """Redis answered: log the end of the outage, if there was one."""
        if self.down_since is not None:
            seconds = time.monotonic() - self.down_since
            self.down_since = None
            self.log.warning(
                "redis_outage process=%s state=recovered after_s=%.1f", self.process, seconds
            )

    def backoff(self) -> float:
        """Sleep before the next attempt: doubling from 0.1 s up to ``MAX_RECONNECT_SECONDS``."""
        delay = self.delay
        time.sleep(delay)
        self.delay = min(MAX_RECONNECT_SECONDS, delay * 2)
        return delay

    def wait_until_up(self, ping: Callable[[], object], stop: Callable[[], bool]) -> bool:
        """Retry ``ping`` with backoff until it answers (True) or ``stop()`` (False)."""
        while not stop():
            try:
                ping()
            except REDIS_DOWN as error:
                self.lost(error)
                self.backoff()
                continue
            self.recovered()
            return True
        return False


class RetryLogFilter(logging.Filter):
    """Drops rq's "could not connect to Redis instance ... retrying" lines during an
    outage ``RedisOutage`` has already logged (rq logs one per retry)."""

    def __init__(self, outage: RedisOutage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not connect to Redis" in str(record.msg):
            error = record.args[1] if isinstance(record.args, tuple) and record.args else None
            self.outage.lost(error if isinstance(error, BaseException) else RuntimeError("-"))
            return False
        return True


# -------- scheduler ---------------------------------------------------------------------


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


# -------- worker ------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _redis_loss_stops_the_loop(method: F) -> F:
    """Wrap a work-loop step: a lost Redis ends rq's loop quietly, to be resumed."""

    @functools.wraps(method)
    def wrapper(self: "SmsWorker", *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except REDIS_DOWN as error:
            self.outage.lost(error)
            self.redis_lost = True
            raise StopRequested() from error
        return result

    return wrapper  # type: ignore[return-value]


class SmsWorker(Worker):
    """rq's forking worker that survives Redis outages (see the module docstring)."""

    #: rq's own backoff while waiting for a job, capped like ours.
    max_connection_wait_time = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = RedisOutage(f"worker:{self.name}")
        self.redis_lost = False
        self.stop_signalled = False
        self.unexpected_end = False
        if not any(isinstance(f, RetryLogFilter) for f in self.log.filters):
            self.log.addFilter(RetryLogFilter(self.outage))

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """rq's work loop, entered again after each Redis outage until stopped."""
        burst = bool(args[0] if args else kwargs.get("burst", False))
        worked = False
        while True:
            self.redis_lost = False
            try:
                worked = super().work(*args, **kwargs) or worked
            except REDIS_DOWN as error:  # during start-up (birth, subscribe)
                self.outage.lost(error)
                self.redis_lost = True
            except StopRequested:
                self.stop_signalled = True
            if not self.redis_lost or self.stop_signalled:
                self.unexpected_end = not (burst or self.stop_signalled)
                return worked
            try:
                if not self.outage.wait_until_up(self.connection.ping, lambda: self.stop_signalled):
                    return worked
            except StopRequested:
                return worked
            # With its data back, Redis still holds our registration: mark it dead
            # so rq's ``register_birth`` accepts the same worker again.
            with suppress(*REDIS_DOWN):
                self.register_death()

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        """rq's fork, with this process's heap frozen across it (``gc.freeze``).

        The work horse inherits about 150,000 objects (Django, the app, the SDK).
        Each full collection in it walked them all: a 100 ms stop of both of the
        send job's threads per 3,000 messages at 0 ms latency (``bench/send.py``),
        and a copy of every page it touched. Frozen, the horse's collections skip
        them (https://docs.python.org/3/library/gc.html#gc.freeze: freeze right
        before fork). This process unfreezes at once, so its own garbage is still
        collected. A host that froze its heap itself (a pre-fork start-up) keeps it
        as it froze it: unfreezing would undo its choice.
        """
        if gc.get_freeze_count():
            super().fork_work_horse(job, queue)
            return
        parent = os.getpid()
        gc.freeze()
        try:
            super().fork_work_horse(job, queue)
        finally:
            if os.getpid() == parent:
                gc.unfreeze()

    def handle_warm_shutdown_request(self) -> None:
        self.stop_signalled = True
        super().handle_warm_shutdown_request()

    @_redis_loss_stops_the_loop
    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        super().heartbeat(*args, **kwargs)
        if kwargs.get("pipeline") is None and (len(args) < 2 or args[1] is None):
            self.outage.recovered()

    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        """While a job runs: a heartbeat Redis cannot take is skipped, the job goes on."""
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_DOWN as error:
            self.outage.lost(error)
            return
        self.outage.recovered()

    execute_job = _redis_loss_stops_the_loop(Worker.execute_job)
    check_for_suspension = _redis_loss_stops_the_loop(Worker.check_for_suspension)
    run_maintenance_tasks = _redis_loss_stops_the_loop(Worker.run_maintenance_tasks)
    dequeue_job_and_maintain_ttl = _redis_loss_stops_the_loop(Worker.dequeue_job_and_maintain_ttl)

    def teardown(self) -> None:
        """rq's teardown; during an outage each step that needs Redis is skipped."""
        if not self.redis_lost:
            super().teardown()
            return
        with suppress(*REDIS_DOWN):
            self.register_death()
        pubsub, thread = getattr(self, "pubsub", None), getattr(self, "pubsub_thread", None)
        if thread is not None:
            thread.stop()
            thread.join(timeout=1)
            self.pubsub_thread = None
        if pubsub is not None:
            with suppress(*REDIS_DOWN):
                pubsub.close()
