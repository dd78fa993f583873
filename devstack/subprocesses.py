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
    # uvicorn wraps an inherited ``--fd`` as a Unix socket (``socket.fromfd(fd,
    # AF_UNIX, ...)``), so asyncio never sets TCP_NODELAY on the connections it
    # accepts, as it does for ``--host/--port``: each response's body then waited for
    # the client's delayed ACK of its head (~40 ms per HTTP request, and on websocket
    # frames sent back to back). Linux copies TCP_NODELAY from the listening socket to
    # the accepted ones, so set it here.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    sock.set_inheritable(True)
    return sock


#: The web server's limits (README, "Security"). The Procfile's ``web`` line and
#: the README's deploy command pass the same flags (``tests/project/test_server_limits.py``):
#: websocket messages up to 64 KiB (``GRAPHQL_WS_MAX_MESSAGE_BYTES`` checks it again
#: in the app), idle keep-alive connections closed after 5 s, 503 past 4,096
#: connections, and request heads up to 16 KiB (h11 enforces it; for httptools,
#: which has no such limit, the guard does, from the same flag), through
#: httptools with a request-head deadline and a per-address connection cap
#: (``notification.http_guard``).
SERVER_LIMITS: tuple[str, ...] = (
    "--ws-max-size",
    "65536",
    "--timeout-keep-alive",
    "5",
    "--limit-concurrency",
    "4096",
    "--http",
    "notification.http_guard:GuardedHttpToolsProtocol",
    "--h11-max-incomplete-event-size",
    "16384",
)


#: The guarded protocols (``notification.http_guard``), by parser: what the guard
#: tests run against and the benches compare.
GUARDED_PROTOCOLS: dict[str, str] = {
    "httptools": "notification.http_guard:GuardedHttpToolsProtocol",
    "h11": "notification.http_guard:GuardedH11Protocol",
}


def uvicorn_command(sock: socket.socket, *extra: str, http: str | None = None) -> list[str]:
    """uvicorn serving ``config.asgi:application`` on ``sock``, inherited by fd.

    No lifespan (Django has none) and no access log (it would only slow the
    server), the production limits (``SERVER_LIMITS``); pass ``sock`` in
    ``pass_fds`` and run from the repository root. ``http`` replaces the limits'
    ``--http`` protocol class (another guarded one, or uvicorn's own for a floor).
    """
    limits = list(SERVER_LIMITS)
    if http is not None:
        limits[limits.index("--http") + 1] = http
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
        *limits,
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
