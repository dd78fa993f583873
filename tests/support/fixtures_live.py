"""Pytest plugin: the live stack as processes (listed in ``tests/conftest.py``'s pytest_plugins).

``live_stack(drain_rate, callback_delay_ms, **env)`` starts the Twilio emulator
and uvicorn (``config.asgi``) as separate processes on this test's database and
Redis, wired together (``PUBLIC_BASE_URL``, emulator credentials), and returns
``(base_url, env, emulator)``; ``env`` is what a worker process needs
(``run_worker``), ``emulator`` the emulator's handle (its fault control).
Extra keyword arguments are environment variables for uvicorn (e.g.
``DJANGO_DEBUG="1"`` to serve static files). Everything stops at teardown.
"""

import pytest

from tests.support.fixtures_emulator import start_emulator_process
from tests.support.live_support import bound_socket, run_uvicorn


@pytest.fixture
def live_stack(subprocess_env, redis):
    """uvicorn + emulator processes wired together; ``start(...)`` -> (base_url, env, emulator)."""

    def start(drain_rate: str, callback_delay_ms: str, **server_env: str):
        sock = bound_socket()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        emulator_cm = start_emulator_process(
            "--drain-rate",
            drain_rate,
            "--callback-delay-ms",
            callback_delay_ms,
            env={**subprocess_env},
        )
        emulator = emulator_cm.__enter__()
        env = {**subprocess_env, **emulator.env, "PUBLIC_BASE_URL": base_url}
        server_cm = run_uvicorn({**env, **server_env}, sock)
        try:
            server_cm.__enter__()
        except BaseException:
            emulator_cm.__exit__(None, None, None)
            raise
        started.append((server_cm, emulator_cm))
        return base_url, env, emulator

    started: list = []
    yield start
    for server_cm, emulator_cm in reversed(started):
        server_cm.__exit__(None, None, None)
        emulator_cm.__exit__(None, None, None)
