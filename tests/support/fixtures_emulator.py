"""Pytest plugin: the Twilio emulator for tests (listed in ``tests/conftest.py``'s pytest_plugins).

* ``twilio_emulator`` (function scope): the session's in-process emulator, reset,
  with Django settings pointing the real SDK at it. Fast by default: 10,000
  segments/s drain and 20 ms between callbacks; use ``.configure(...)`` for more.
* ``start_emulator_process(...)`` / ``twilio_emulator_process``: the emulator as a
  separate ``manage.py twilio_emulator`` process, for end-to-end tests that run
  workers and servers as processes too. Always terminated at teardown.
"""

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack.subprocesses import stop_process
from tests.support.settings_helpers import set_sms
from tests.support.waiting import STARTUP_TIMEOUT_SECONDS
from twilio_emulator import EmulatorConfig, EmulatorServer

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_ACCOUNT_SID = "AC" + "5ec7e57a" * 4
TEST_AUTH_TOKEN = "70ca1e57" * 4
TEST_FROM_NUMBER = "+15005550006"
TEST_CONFIG = EmulatorConfig(drain_rate=10_000, callback_delay_ms=20)
LISTENING_PREFIX = "Twilio emulator listening on "


@dataclass
class EmulatorHandle:
    """What a test needs to use an emulator: where it is, its credentials, its control API."""

    base_url: str
    account_sid: str = TEST_ACCOUNT_SID
    auth_token: str = TEST_AUTH_TOKEN
    from_number: str = TEST_FROM_NUMBER
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point a subprocess (worker, server) at this emulator."""
        return {
            "TWILIO_BASE_URL": self.base_url,
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_FROM_NUMBER": self.from_number,
        }

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Every accepted message, oldest first."""
        return self.control("GET", f"messages?to={urllib.request.quote(to)}" if to else "messages")

    def requests(self) -> list[dict[str, Any]]:
        """Every create attempt, including rejected and faulted ones, with its outcome."""
        return self.control("GET", "requests")

    def callbacks(self) -> list[dict[str, Any]]:
        """Every status callback delivery attempt (url, params, status_code, error)."""
        return self.control("GET", "callbacks")

    def reset(self) -> None:
        self.control("POST", "reset", {})

    def configure(self, **values: Any) -> dict[str, Any]:
        return self.control("POST", "config", values)

    def inject_faults(self, faults: list[dict[str, Any]]) -> None:
        self.control("POST", "faults", {"faults": faults})

    def release_held(self) -> None:
        """Answer now every create request a ``timeout`` fault is holding."""
        self.control("POST", "release", {})

    def set_outcome(self, to: str, status: str, error_code: int | None = None) -> None:
        self.control("POST", "outcomes", {to: {"status": status, "error_code": error_code}})

    def set_prices(self, table: dict[str, dict[str, str]]) -> None:
        """Replace the Pricing API's table: ``{"US": {"local": "0.01"}}``."""
        self.control("POST", "prices", table)

    def price_requests(self) -> list[str]:
        """ISO codes the Pricing API was asked for, in order."""
        return self.control("GET", "prices")["requests"]

    def inbound(self, from_: str, to: str, body: str, url: str) -> dict[str, Any]:
        """Have the emulator post a signed incoming SMS to ``url``; returns status/body."""
        return self.control("POST", "inbound", {"from": from_, "to": to, "body": body, "url": url})


@pytest.fixture(scope="session")
def twilio_emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN, config=TEST_CONFIG
    ).start()
    yield server
    server.stop()


@pytest.fixture
def twilio_emulator(twilio_emulator_server: EmulatorServer, settings) -> EmulatorHandle:
    from notification.guardrails import (
        costs as pricing,
    )  # here: benches import this module before django.setup()

    twilio_emulator_server.reset()
    pricing.clear_cache()  # prices are cached per process: each test sees its emulator's
    handle = EmulatorHandle(base_url=twilio_emulator_server.base_url)
    set_sms(settings, TWILIO_BASE_URL=handle.base_url)
    set_sms(settings, TWILIO_ACCOUNT_SID=handle.account_sid)
    set_sms(settings, TWILIO_AUTH_TOKEN=handle.auth_token)
    set_sms(settings, TWILIO_FROM_NUMBER=handle.from_number)
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID="")
    return handle


@contextmanager
def start_emulator_process(
    *args: str,
    account_sid: str = TEST_ACCOUNT_SID,
    auth_token: str = TEST_AUTH_TOKEN,
    env: dict[str, str] | None = None,
) -> Iterator[EmulatorHandle]:
    """Run ``manage.py twilio_emulator --port 0`` (plus ``args``) and yield its handle.

    ``env`` is the whole environment for the process (default: this one, with
    DJANGO_DEBUG=1 when no secret key is set so settings import).
    """
    if env is None:
        env = dict(os.environ)
        if not env.get("DJANGO_SECRET_KEY"):
            env.setdefault("DJANGO_DEBUG", "1")
    command = [
        sys.executable,
        str(REPO_ROOT / "manage.py"),
        "twilio_emulator",
        "--port",
        "0",
        "--account-sid",
        account_sid,
        "--auth-token",
        auth_token,
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        base_url = _read_listening_url(process)
        yield EmulatorHandle(
            base_url=base_url, account_sid=account_sid, auth_token=auth_token, process=process
        )
    finally:
        stop_process(process)
        if process.stdout:
            process.stdout.close()


def _read_listening_url(process: subprocess.Popen) -> str:
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith(LISTENING_PREFIX):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_SECONDS)
    for line in lines:
        if line.startswith(LISTENING_PREFIX):
            return line[len(LISTENING_PREFIX) :].strip()
    raise RuntimeError(
        f"twilio_emulator did not start (exit code {process.poll()}); output: {''.join(lines)!r}"
    )


@pytest.fixture
def twilio_emulator_process() -> Iterator[EmulatorHandle]:
    """A separate emulator process with the test credentials and fast test pacing."""
    with start_emulator_process(
        "--drain-rate", str(TEST_CONFIG.drain_rate), "--callback-delay-ms", "20"
    ) as handle:
        yield handle
