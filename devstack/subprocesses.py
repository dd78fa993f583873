"""Child server processes: a listening socket handed over by fd, and a clean stop.

Shared by the tests' live servers and the ``bench/`` scripts so both start and
stop uvicorn (and the emulator) the same way.
"""

import socket
import subprocess
import sys


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port that a child process can inherit (uvicorn ``--fd``).

    Binding here first means the port is known before the server starts (for
    ``PUBLIC_BASE_URL``) and no other process can take it in between.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.set_inheritable(True)
    return sock


def uvicorn_command(sock: socket.socket, *extra: str) -> list[str]:
    """uvicorn serving ``config.asgi:application`` on ``sock``, inherited by fd.

    No lifespan (Django has none) and no access log (it would only slow the
    server); pass ``sock`` in ``pass_fds`` and run from the repository root.
    """
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--fd",
        str(sock.fileno()),
        "--no-access-log",
        "--lifespan",
        "off",
        *extra,
    ]


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate politely, and kill only if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
