"""A paced run: keep each sender's queue at the provider fed at the rate it drains.

The provider (Twilio) drains a sender's queue at ``TWILIO_SMS_RATE`` segments per
second, first in, first out. Handing it one big batch per scheduled run is both
too slow (idle between runs) and unfair (a HIGH message handed over later waits
behind the whole batch in the provider's FIFO queue, where our priority order no
longer applies). A run therefore keeps the estimated queue
(``queue_estimate``) topped up to ``TWILIO_SMS_QUEUE_TARGET`` seconds of drain,
i.e. ``queue_target_segments()``: it claims what fits below the target (most
urgent first, at most ``TWILIO_SMS_BATCH_SIZE`` per claim), waits while the
queue drains, and repeats. Every due message keeps its place in *our* queue,
where priority holds; the provider only ever holds a few seconds of work, so a
HIGH message claimed now waits behind at most the target at the provider.

A run ends when nothing is due (a HIGH row created later starts a new one:
``wake``), or when its deadline (set by the job so the next scheduled run never
overlaps it) would pass during the next pause. Each top-up is an ordinary
batch (``run_batch``): claims, the dispatch log, recovery, the queue limit,
opt-outs and retries apply unchanged, and a run is as backend-independent as
one batch. A message larger than the room left may be taken alone (so it is
never starved), so the queue can exceed the target by less than one message.
A top-up that loses its database connection before sending is retried at once
on a fresh connection (then once per pause while the database stays away), so a
cut connection does not end the run.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from notification.conf import app_settings
from notification.sending.batch import BatchReport, run_batch
from notification.sending.result_retry import CONNECTION_LOST, drop_connection
from notification.sending.results import ResultCounts
from notification.sending.selection import WAIT_BUDGET

#: Longest pause between top-ups: how late a run notices rows that became due
#: without a wake-up (scheduled publish times, ended retry backoffs).
MAX_PAUSE_SECONDS = 1.0
#: Shortest pause: below this, polling costs more than it gains.
MIN_PAUSE_SECONDS = 0.05
#: A top-up waits for room of at least this share of the target (fewer, larger claims).
TOP_UP_SHARE = 0.1

ENDED_NOTHING_DUE = "nothing due"
logger = logging.getLogger("notification.sending")
ENDED_DEADLINE = "next scheduled run is near"


def queue_target_segments() -> int:
    """``TWILIO_SMS_QUEUE_TARGET`` seconds of drain, in segments (at least one)."""
    return max(1, round(app_settings.TWILIO_SMS_QUEUE_TARGET * app_settings.TWILIO_SMS_RATE))


def pause_after(report: BatchReport, target: int, rate: float) -> float:
    """Seconds to wait after a top-up before the next one is worth claiming.

    The queue holds about ``queue_estimate + segments`` after the batch; the
    next claim should find room for a tenth of the target. Never more than
    ``MAX_PAUSE_SECONDS`` (rows that became due meanwhile), never less than
    ``MIN_PAUSE_SECONDS``. A claim cut short by the batch size, not the target,
    goes on at once: the target still has room.
    """
    if report.wait_reason == WAIT_BUDGET:
        return 0.0
    queued = report.queue_estimate + report.segments
    step = max(1.0, target * TOP_UP_SHARE)
    seconds = (queued - target + step) / rate
    return min(MAX_PAUSE_SECONDS, max(MIN_PAUSE_SECONDS, seconds))


@dataclass
class RunReport(ResultCounts):
    """What a paced run did: the sums of its batches' counts, and why it ended."""

    batches: int = 0
    recovered_pending: int = 0
    recovered_unknown: int = 0
    queue_target: int = 0
    woken: int = 0
    #: Top-ups that lost the database connection before sending (retried next pause).
    db_errors: int = 0
    ended: str = ""
    duration_ms: int = 0

    _FROM_BATCH = (
        *(f.name for f in fields(ResultCounts)),
        "recovered_pending",
        "recovered_unknown",
    )

    def add(self, batch: BatchReport) -> None:
        self.batches += 1
        for name in self._FROM_BATCH:
            setattr(self, name, getattr(self, name) + getattr(batch, name))

    def merge(self, later: "RunReport") -> "RunReport":
        """This run followed by ``later`` (a job that ran again after a late wake-up)."""
        merged = RunReport(**self.as_dict())
        for name in (*self._FROM_BATCH, "batches", "woken", "db_errors", "duration_ms"):
            setattr(merged, name, getattr(self, name) + getattr(later, name))
        merged.ended = later.ended
        return merged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log_line(self) -> str:
        return "sms_run " + " ".join(
            f'{key}="{value}"' if " " in str(value) else f"{key}={value}"
            for key, value in asdict(self).items()
        )


class Waiter(Protocol):
    """How a run waits between top-ups (the job passes ``wake.WakeSignal``).

    ``wait`` returns True when woken early (a HIGH row is due). ``clear`` runs
    before every claim, so a wake-up that came before the claim is not waited for.
    """

    def clear(self) -> None: ...

    def wait(self, seconds: float) -> bool: ...


class SleepWaiter:
    """Waits the whole pause: for runs without Redis wake-ups (``send_sms_batch``)."""

    def clear(self) -> None:
        pass

    def wait(self, seconds: float) -> bool:
        time.sleep(seconds)
        return False


def run_paced(
    *,
    deadline: float,
    waiter: Waiter | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunReport:
    """Top the queue up to the target until nothing is due or ``deadline`` (``clock`` time).

    The deadline is checked before each pause, so the run ends no later than
    ``deadline`` plus one batch.
    """
    started = clock()
    waiter = waiter or SleepWaiter()
    rate = float(app_settings.TWILIO_SMS_RATE)
    run = RunReport(queue_target=queue_target_segments())
    lost_in_a_row = 0
    while True:
        waiter.clear()
        try:
            batch = run_batch(queue_target=run.queue_target)
        except CONNECTION_LOST as error:
            # Lost before anything left (the result write retries by itself): a
            # fresh connection at once (a cut connection), then once per pause (a
            # database that is down), not a dead run until the next scheduled one.
            drop_connection()
            run.db_errors += 1
            lost_in_a_row += 1
            if run.db_errors == 1:
                logger.warning('sms_run db=lost error="%s" (reconnecting)', error)
            if clock() + MAX_PAUSE_SECONDS >= deadline:
                run.ended = ENDED_DEADLINE
                break
            if lost_in_a_row > 1:
                waiter.wait(MAX_PAUSE_SECONDS)
            continue
        lost_in_a_row = 0
        run.add(batch)
        if batch.claimed == 0 and not batch.wait_reason:
            run.ended = ENDED_NOTHING_DUE
            break
        pause = pause_after(batch, run.queue_target, rate)
        if clock() + pause >= deadline:
            run.ended = ENDED_DEADLINE
            break
        if pause and waiter.wait(pause):
            run.woken += 1
    run.duration_ms = round((clock() - started) * 1000)
    return run
