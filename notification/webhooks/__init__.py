"""Twilio webhooks: delivery status callbacks and inbound messages.

In the style of django-anymail: each view checks the signature, turns Twilio's
form into a normalized event (``events``/``normalize``), and hands that event to
code that knows nothing about HTTP (``status``, ``inbound``).
"""
