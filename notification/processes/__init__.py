"""The long-running processes' classes: the RQ worker and rq-scheduler, made to ride out
a Redis outage (``worker``, ``scheduler``; the shared outage log and backoff in ``outage``).

Above the jobs layer (the scheduler keeps the declared schedule, ``notification.jobs``)
and below the management commands that start them.
"""
