"""Idempotency keys for creating notifications: a retried create returns the first result.

A frontend whose create request timed out cannot know whether it reached us; retrying
without a key would create (and send) the SMS twice. With a key, the first request
creates and remembers ``(caller, key) -> notification`` in the same transaction, and
every later request with that key gets the same notification back.

* ``notification.models.IdempotencyKey``: the remembered keys, unique per caller (the
  database enforces it);
* ``checks``: which keys a request may carry;
* ``fingerprint``: what "the same input" means;
* ``claims``: create-or-replay, safe under concurrent retries;
* ``expiry``: keys are forgotten after ``SMS_IDEMPOTENCY_TTL`` seconds.
"""
