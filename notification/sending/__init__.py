"""Sending SMS through Twilio in paced, claimed batches that never double-send.

One module per job: ``selection`` (what is due, within the segment budget),
``queue_estimate`` (how full Twilio's per-sender queue is), ``claiming`` (atomic
hand-over of rows to one worker), ``dispatch`` (concurrent SDK calls),
``errors`` (what a failure means), ``results`` (batched writes), ``recovery``
(claims left behind by dead workers), ``optouts``, ``lock`` and ``batch`` (the
orchestration and its log line).
"""
