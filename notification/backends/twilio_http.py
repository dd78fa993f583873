"""The SDK's HTTP session, minus a per-request scan of the process environment.

``TwilioHttpClient.request`` calls ``Session.merge_environment_settings`` for every
message: requests then reads the proxy variables (``getproxies_environment`` walks
and decodes all of ``os.environ``, twice), checks ``no_proxy`` against the host and
looks up ``REQUESTS_CA_BUNDLE``, about a twentieth of a send worker's CPU at 0 ms
latency (README, "Benchmarks"), for an answer that only depends on the URL's
origin and the arguments.

``RememberingSession`` asks requests once per (origin, arguments) and keeps the
answer for the life of the session, i.e. of the sending thread's SDK client.
Which proxy and which CA bundle are used does not change: they are requests' own
answers from the same environment. Only a change of the environment *after* a
thread's first request to an origin is not seen, as the SDK itself already does
for proxies (it passes its own ``proxy`` dict, which requests fills from the
environment on the first call and which then wins on every later one).
"""

from typing import Any
from urllib.parse import urlsplit

from requests import Session


class RememberingSession(Session):
    """A ``requests.Session`` whose environment settings are looked up once per origin."""

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[tuple, dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        parts = urlsplit(str(url))
        key = (
            parts.scheme,
            parts.netloc,
            tuple(sorted((proxies or {}).items())),
            stream,
            verify,
            cert if not isinstance(cert, list) else tuple(cert),
        )
        merged = self._merged.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._merged[key] = merged
        # A copy: the caller passes it on as keyword arguments, never to be shared.
        return {**merged, "proxies": dict(merged["proxies"] or {})}


def remembering(session: Session | None) -> Session | None:
    """A ``RememberingSession`` with ``session``'s adapters (the SDK's pool sizes)."""
    if session is None:
        return None
    replacement = RememberingSession()
    replacement.adapters = session.adapters
    return replacement
