from django.apps import AppConfig


class TwilioEmulatorConfig(AppConfig):
    """Installed by the development project only, for the ``twilio_emulator`` command."""

    name = "twilio_emulator"
    verbose_name = "Twilio emulator (development)"
