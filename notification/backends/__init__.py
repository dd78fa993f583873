"""Pluggable SMS backends, chosen by the ``SMS_BACKEND`` setting (a dotted path).

* ``notification.backends.twilio.TwilioBackend`` (the default): the official SDK.
* ``notification.backends.locmem.LocmemBackend``: keeps messages in ``outbox``
  for a host project's tests, like ``django.core.mail.outbox``.
* ``notification.backends.console.ConsoleBackend``: prints messages, for
  development without the Twilio emulator.
"""

from django.utils.module_loading import import_string

from notification.backends.base import BaseSmsBackend
from notification.conf import app_settings


def get_backend(path: str | None = None) -> BaseSmsBackend:
    """A new instance of the configured backend (or of ``path``)."""
    return import_string(path or app_settings.SMS_BACKEND)()
