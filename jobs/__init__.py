"""What runs when in this project: the schedule rq-scheduler keeps (``jobs.schedule``).

The app's ``notification.jobs`` holds the job functions; this package says when
they run, as ``schema`` assembles the app's GraphQL parts. ``SMS_SCHEDULE``
(``config/settings.py``) names ``jobs.schedule.SCHEDULE``.
"""
