"""Free TCP ports for throwaway servers."""

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port nothing listens on right now.

    Several engineers (and CI jobs) run tests on one machine at once, so fixed
    ports would collide; the kernel picks one for us instead. There is a small
    window before the server binds it, which is acceptable for tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, is_alive=lambda: True) -> None:
    """Block until ``host:port`` accepts connections.

    ``is_alive`` lets the caller stop waiting early when the server process has
    already died (its log then says why), instead of sleeping out the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as error:
            if not is_alive():
                raise RuntimeError(f"server for {host}:{port} exited before listening") from error
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from error
            time.sleep(0.05)
