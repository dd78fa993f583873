"""Twilio webhooks: delivery status callbacks and inbound messages.

In the style of django-anymail: each view checks the signature and turns
Twilio's form into a normalised event (both in ``notification.backends.twilio``),
then hands that event to code that knows nothing about HTTP
(``notification.tracking.status``, ``inbound``).
"""
