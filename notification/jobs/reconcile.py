"""The reconciliation job: one pass (``notification.reconciliation``) every
``SMS_RECONCILE_INTERVAL`` seconds (default 900).

The project's schedule declaration (the top-level ``jobs`` package) registers
``notification.jobs.reconcile.reconcile_sms`` with rq-scheduler at
``reconcile_interval()``. Overlapping passes are harmless: every change a pass
makes is a guarded UPDATE (forward-only statuses, adoption only of ``unknown``
rows, a resend only of a row still ``unknown`` with the same request start), so
two passes at once decide the same and apply it once.
"""

from typing import Any

from notification.conf import app_settings
from notification.jobs.last_run import LAST_RECONCILE_KEY, record_run_finished
from notification.reconciliation.passes import reconcile
from notification.sending.wake import sms_connection

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
