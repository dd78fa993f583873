"""Writing a batch's results through a lost database connection.

By the time a batch writes its results, Twilio has answered: the answers
(sids, statuses, errors) exist only in this worker's memory. A dropped
connection (``pg_terminate_backend``, a failover, a restarted PostgreSQL) used
to raise out of the job; recovery later marked the whole batch ``unknown``
although Twilio had accepted every message, and staff resending them made real
duplicates. Here the write is retried: the broken connection is closed (Django
opens a new one on the next query), with a doubling pause up to 2 s, for up to
``SMS_RESULT_WRITE_TIMEOUT`` seconds. The write is one transaction guarded by
the batch's claim token, so a retry can neither half-apply nor apply twice.

Only past the timeout does it give up (``ResultsNotWritten``); the caller marks
the batch's dispatch log so recovery words the resulting ``unknown`` as "the
database was unreachable", not "the worker stopped".
"""

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from notification.exceptions import SmsNotificationError

# The send path's logger: operators filter on "notification.sending".
sending_logger = logging.getLogger("notification.sending")

T = TypeVar("T")

#: Errors of a lost or unreachable database (not constraint or programming errors).
CONNECTION_LOST = (OperationalError, InterfaceError)
FIRST_PAUSE_SECONDS = 0.1
MAX_PAUSE_SECONDS = 2.0


class ResultsNotWritten(SmsNotificationError, RuntimeError):
    """The database stayed unreachable for the whole write timeout."""


def drop_connection() -> None:
    """Close the broken connection; the next query opens a fresh one."""
    with suppress(DatabaseError):
        connection.close()


def write_with_retry(write: Callable[[], T], *, timeout: float, what: str = "results") -> T:
    """Run ``write`` (one transaction) until it succeeds or ``timeout`` seconds pass.

    Inside an outer transaction nothing can be retried (the connection's work
    so far is lost with it): the error is raised as is.
    """
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE_SECONDS
    lost_at: float | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            result = write()
        except CONNECTION_LOST as error:
            if connection.in_atomic_block:
                raise
            drop_connection()
            if lost_at is None:
                lost_at = time.monotonic()
                sending_logger.warning(
                    'sms_%s db=lost error="%s" (answers kept in memory; retrying for up to %g s)',
                    what,
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error),
                    timeout,
                )
            if time.monotonic() + pause > deadline:
                raise ResultsNotWritten(
                    f"The database was unreachable for {timeout:g} s while writing {what}."
                ) from error
            time.sleep(pause)
            pause = min(MAX_PAUSE_SECONDS, pause * 2)
            continue
        if lost_at is not None:
            sending_logger.warning(
                "sms_%s db=recovered after_s=%.1f attempts=%d",
                what,
                time.monotonic() - lost_at,
                attempts,
            )
        return result
