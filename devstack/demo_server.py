"""Serve the demo frontend (``demo/``) on its own origin: ``python -m devstack.demo_server``.

The demo is a static page calling the API on another origin, which is what
makes it exercise CORS, the cross-origin CSRF token and the websocket origin
check. ``make run`` serves it on http://127.0.0.1:3000 and adds that origin to
``DJANGO_CORS_ALLOWED_ORIGINS``. ``/vendor/`` comes from the app's vendored
files (the ``graphql-ws`` browser build), so nothing is fetched from a CDN.
"""

import argparse
import functools
import http.server
import socket
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "demo"
VENDOR_DIR = REPO_ROOT / "notification" / "static" / "notification" / "vendor"
DEMO_PORT = 3000
DEMO_ORIGIN = f"http://127.0.0.1:{DEMO_PORT}"


class DemoRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Files from ``demo/``, ``/vendor/...`` from the vendored files; errors-only log."""

    def translate_path(self, path: str) -> str:
        if path.startswith("/vendor/"):
            relative = super().translate_path(path[len("/vendor") :])
            return str(VENDOR_DIR / Path(relative).relative_to(DEMO_DIR))
        return super().translate_path(path)

    def end_headers(self) -> None:
        # Always the files on disk: an edited demo shows on reload.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith(("4", "5")):
            super().log_request(code, size)


def demo_server(sock: socket.socket | None = None, port: int = DEMO_PORT) -> http.server.HTTPServer:
    """A threading server for ``demo/`` on ``sock`` (already bound) or 127.0.0.1:``port``."""
    handler = functools.partial(DemoRequestHandler, directory=str(DEMO_DIR))
    if sock is None:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server = http.server.ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_activate()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEMO_PORT)
    args = parser.parse_args()
    server = demo_server(port=args.port)
    print(f"Demo frontend on http://127.0.0.1:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
