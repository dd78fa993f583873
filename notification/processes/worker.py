"""The RQ worker ``sms_worker`` runs: it rides out a Redis outage instead of quitting.

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
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

from rq.exceptions import StopRequested
from rq.worker import Worker

from notification.processes.outage import REDIS_DOWN, RedisOutage, RetryLogFilter

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
