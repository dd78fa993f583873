"""This project's schedule: what runs when, one line per job.

The app defines each job it ships with its cadence (``notification.jobs.schedule``:
``SEND_RUN`` every ``TWILIO_SMS_INTERVAL``, ``FORGET_KEYS`` hourly, ``RECONCILE``
every ``SMS_RECONCILE_INTERVAL``); this list says which of them this project runs,
and is where a job of the project's own goes (``Periodic(id, "dotted.path", every=…)``;
an interval given as a setting's name follows that setting). ``SMS_SCHEDULE`` names
this list. The scheduler process (``manage.py sms_scheduler``) makes Redis match it
when it starts and on every poll, so a Redis that lost its data heals by itself;
``manage.py schedule_sms`` re-registers it by hand (idempotent). Keep the send run
(``SEND_RUN``, under ``SEND_RUN_ID``): a run reads its own next time from it.
"""

from notification.jobs.schedule import FORGET_KEYS, RECONCILE, SEND_RUN

SCHEDULE = [
    SEND_RUN,
    FORGET_KEYS,
    RECONCILE,
]
