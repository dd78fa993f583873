"""Loopback traffic for the throttles: one legitimate user and one abusive client at once.

Used by ``tests/graphql/test_throttle_load.py`` (asserting behaviour) and
``bench/throttles.py`` (printing latency figures). The server must trust
``X-Forwarded-For`` from 127.0.0.1 (uvicorn ``--proxy-headers
--forwarded-allow-ips 127.0.0.1``, as behind a proxy), so each client has its own
address (TEST-NET addresses from RFC 5737, only ever a header value here) while all
traffic stays on loopback. Every loop is bounded in count.
"""

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.live_support import HttpSession

SEGMENTS = 'query { smsSegments(body: "hello") { segments } }'
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id } }"
LEGIT_ADDRESS = "192.0.2.10"
ABUSER_ADDRESS = "198.51.100.20"
GUESSER_ADDRESS = "203.0.113.30"
CHECK_ADDRESS = "192.0.2.40"


class Client(HttpSession):
    """A browser-like client (``HttpSession``) with its own client address."""

    def __init__(self, base_url: str, address: str):
        super().__init__(base_url)
        self.client.headers["X-Forwarded-For"] = address

    def login(self, username: str, password: str) -> dict[str, Any]:  # type: ignore[override]
        """The login's response, refused or not (``HttpSession.login`` asserts success)."""
        return self.graphql(LOGIN, {"u": username, "p": password})


def error_code(result: dict[str, Any]) -> str | None:
    errors = result.get("errors") or []
    return (errors[0].get("extensions") or {}).get("code") if errors else None


@dataclass
class Report:
    baseline_ms: list[float] = field(default_factory=list)
    under_abuse_ms: list[float] = field(default_factory=list)
    legit_codes: list[str | None] = field(default_factory=list)
    abuser_codes: list[str | None] = field(default_factory=list)
    guess_codes: list[str | None] = field(default_factory=list)
    legit_login_code: str | None = "not run"
    target_login_code: str | None = "not run"
    abuse_seconds: float = 0.0


def _timed(client: Client, query: str, into: list[float]) -> dict[str, Any]:
    started = time.perf_counter()
    result = client.graphql(query)
    into.append((time.perf_counter() - started) * 1000)
    return result


def run_traffic(
    base_url: str,
    *,
    legit: tuple[str, str],
    abuser: tuple[str, str],
    target: tuple[str, str],
    legit_requests: int = 10,
    abusive_requests: int = 150,
    abusive_threads: int = 4,
    wrong_logins: int = 30,
) -> Report:
    """Baseline legit requests, then legit requests while the abuse runs, then checks."""
    report = Report()
    legit_client = Client(base_url, LEGIT_ADDRESS)
    abuser_clients = [Client(base_url, ABUSER_ADDRESS) for _ in range(abusive_threads)]
    guesser = Client(base_url, GUESSER_ADDRESS)
    try:
        assert not legit_client.login(*legit).get("errors")
        for client in abuser_clients:
            assert not client.login(*abuser).get("errors")

        for _ in range(legit_requests):
            report.legit_codes.append(
                error_code(_timed(legit_client, SEGMENTS, report.baseline_ms))
            )

        lock = threading.Lock()

        def flood(client: Client, count: int) -> None:
            for _ in range(count):
                code = error_code(client.graphql(SEGMENTS))
                with lock:
                    report.abuser_codes.append(code)

        def guess() -> None:
            for attempt in range(wrong_logins):
                code = error_code(guesser.login(target[0], f"guess-{attempt}"))
                with lock:
                    report.guess_codes.append(code)

        per_thread = abusive_requests // abusive_threads
        threads = [
            threading.Thread(target=flood, args=(client, per_thread)) for client in abuser_clients
        ]
        threads.append(threading.Thread(target=guess))
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for _ in range(legit_requests):
            report.legit_codes.append(
                error_code(_timed(legit_client, SEGMENTS, report.under_abuse_ms))
            )
        for thread in threads:
            thread.join(timeout=300)
        report.abuse_seconds = time.perf_counter() - started

        report.legit_login_code = error_code(Client(base_url, LEGIT_ADDRESS).login(*legit))
        report.target_login_code = error_code(Client(base_url, CHECK_ADDRESS).login(*target))
    finally:
        for client in (legit_client, guesser, *abuser_clients):
            client.close()
    return report
