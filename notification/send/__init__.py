"""Sending SMS in paced, claimed batches that never double-send, whatever the backend.

One module per job: ``selection`` (what is due, within the segment budget),
``queue_estimate`` (how full the provider's per-sender queue is), ``claiming``
(atomic hand-over of rows to one worker), ``dispatch`` (concurrent sends through
the configured backend, ``notification.backends``), ``results`` (batched writes,
then settling early callbacks and announcing the changes), ``recovery`` (claims
left behind by dead workers), ``dispatch_log``, ``lock`` and ``batch`` (the
orchestration and its log line). What a failure means and how it is retried are
the delivery rules' (``notification.delivery``).
"""
