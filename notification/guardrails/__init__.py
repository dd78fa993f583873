"""Compliance and cost guardrails: what may be sent, to whom, when, and for how much.

Each guardrail is one module with one rule, and each holds twice: at create time
(a coded field error, so a client learns at once) where the rule is about the
request (``countries``, ``recipients``), and at send time, in the claim step
(``screen``), so it also holds for rows made with the ORM or the admin, for
settings changed after a row was created, and across any number of workers.

* ``countries``: ``SMS_ALLOWED_COUNTRIES`` (SMS pumping / toll fraud).
* ``quiet_hours``: ``SMS_QUIET_HOURS`` and ``SMS_QUIET_HOURS_BY_REGION`` in the
  recipient's time zone, for ``MARKETING`` messages (47 CFR 64.1200(c)(1)).
* ``pricing``: the price of one segment per country (Twilio's Pricing API through
  the backend, or ``SMS_PRICE_TABLE``), cached.
* ``spend``: ``SMS_DAILY_SPEND_LIMIT`` / ``SMS_MONTHLY_SPEND_LIMIT``, counted in the
  database.
* ``recipients``: ``SMS_RECIPIENT_DAILY_LIMIT`` at create time.
* ``reported``: the price Twilio billed, fetched for finished messages (heartbeat).
* ``screen``: applies the send-time rules to a claim's candidates and writes the
  holds and refusals.
"""
