"""``make run``'s embedded Redis (``python -m devstack.redis_server``) comes back by
itself when redis-server dies, so honcho does not stop the whole stack."""

import os
import signal
import subprocess
import sys
import tempfile

import redis as redis_py

from devstack.ports import free_port
from tests.support.fixtures_services import REPO_ROOT
from tests.support.pacing_support import children
from tests.support.waiting import wait_until


def pong(port: int) -> bool:
    client = redis_py.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis_py.ConnectionError:
        return False
    finally:
        client.close()


def test_a_killed_embedded_redis_is_restarted_and_the_stack_keeps_running():
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        serve = subprocess.Popen(
            [sys.executable, "-m", "devstack.redis_server", "--port", str(port)]
            + ["--dir", directory],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: pong(port), 15, "redis-server to start")
            first = children(serve.pid)
            assert len(first) == 1
            os.kill(first[0], signal.SIGKILL)  # a crash, not a stop request

            wait_until(lambda: children(serve.pid) not in ([], first), 15, "a new redis-server")
            wait_until(lambda: pong(port), 15, "Redis to answer again")
            assert serve.poll() is None  # honcho would have stopped everything otherwise
        finally:
            serve.send_signal(signal.SIGTERM)
            _, stderr = serve.communicate(timeout=20)
    assert serve.returncode == 0, stderr
    assert "restarting it" in stderr
