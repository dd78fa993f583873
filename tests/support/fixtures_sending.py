"""Fixtures for the sending tests (registered in ``tests/conftest.py``)."""

import pytest


@pytest.fixture
def no_status_callbacks(twilio_emulator):
    """Switch the emulator's status callbacks off: nothing serves PUBLIC_BASE_URL in the
    sending tests. Use it with ``pytest.mark.usefixtures``; tests that ask for
    ``twilio_emulator`` get this same, reconfigured emulator."""
    twilio_emulator.configure(callbacks_enabled=False)
    return twilio_emulator
