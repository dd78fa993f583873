"""This project's schedule: one ``Periodic`` line per job (id, job function, every).

The scheduler process (``manage.py sms_scheduler``) makes Redis match this list
when it starts and on every poll, so a Redis that lost its data heals by itself;
``manage.py schedule_sms`` re-registers it by hand (idempotent). An interval
given as a setting's name follows that setting. Keep the send run under its id
(``SEND_RUN_ID``): a run reads its own next time from it.
"""

from notification.jobs.reconcile import RECONCILE_FUNC, RECONCILE_JOB_ID
from notification.jobs.schedule import (
    FORGET_KEYS_FUNC,
    FORGET_KEYS_ID,
    SEND_RUN_ID,
    SWEEP_SECONDS,
    Periodic,
)
from notification.sending.lock import sms_job_timeout
from notification.sending.wake import RUN_JOB_FUNC

SCHEDULE = [
    Periodic(
        SEND_RUN_ID,
        RUN_JOB_FUNC,
        every="TWILIO_SMS_INTERVAL",
        description="Send due SMS (a paced run)",
        timeout=sms_job_timeout,
    ),
    Periodic(
        FORGET_KEYS_ID,
        FORGET_KEYS_FUNC,
        every=SWEEP_SECONDS,
        description="Forget expired idempotency keys",
    ),
    Periodic(
        RECONCILE_JOB_ID,
        RECONCILE_FUNC,
        every="SMS_RECONCILE_INTERVAL",
        description="Settle unknown and unfinished SMS with Twilio's records",
    ),
]
