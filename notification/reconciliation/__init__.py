"""Reconciliation: asking the provider what happened to messages whose fate we do not know.

Twilio recommends it (callbacks can be lost: a 5xx or a timeout of ours is not
retried unless the URL asks for it), and it is the only way out of ``unknown``
when no callback comes. A pass (``passes.reconcile``; the job
``notification.jobs.reconcile.reconcile_sms`` every ``SMS_RECONCILE_INTERVAL``
seconds, or ``manage.py reconcile_sms``) looks at rows untouched for
``SMS_RECONCILE_AFTER`` seconds (``rows``) and, through the backend's
``fetch``/``find`` (``notification.backends.base``), applies the provider's
evidence with the status callbacks' own rules (``notification.status``):

* a sid we know (``unknown``, or handed over without a final status): fetch it;
* ``unknown`` without a sid: list the provider's messages to that number from
  that sender since the request left, and match the body (``matching``);
  found: adopt its sid and status; provably absent: send it again, once.
"""
