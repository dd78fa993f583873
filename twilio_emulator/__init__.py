"""A Twilio-compatible HTTP API for development and tests (Twilio itself is never reachable).

Serves what the official ``twilio`` SDK uses to create, fetch and list messages,
answers the test credentials' magic numbers, paces each sender like Twilio's
queue and posts signed status callbacks. Run it with
``python manage.py twilio_emulator`` or in-process with ``EmulatorServer``.
"""

from twilio_emulator.server import EmulatorServer
from twilio_emulator.state import EmulatorConfig

# The development credentials: shaped like Twilio's (AC + 32 hex, 32 hex token)
# but meaningless anywhere else. ``make run`` (``devstack.run``) gives them to
# every process, and the command uses them when neither settings nor its
# options give credentials.
DEV_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEV_AUTH_TOKEN = "fedcba9876543210" * 2

__all__ = ["DEV_ACCOUNT_SID", "DEV_AUTH_TOKEN", "EmulatorConfig", "EmulatorServer"]
