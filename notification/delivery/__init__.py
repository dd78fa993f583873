"""The delivery rules, each in one place: the send job and the status webhook both call them.

``statuses`` (the order of delivery statuses and where each moves a
notification), ``retry`` (backoff, the attempt cap and the messages staff
read), ``error_codes`` (Twilio's error catalogue), ``payload`` (the status
event subscribers and host projects receive), ``optouts`` and ``reports``
(normalised status callbacks and inbound messages). Nothing here touches HTTP,
Redis or a backend: if a rule were restated elsewhere, the two copies would
drift and a callback would treat a message differently from the send job.
"""
