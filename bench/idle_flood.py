"""Idle-connection flood: a legitimate client's success rate and latency against held idle sockets.

    .venv/bin/python bench/idle_flood.py [--idle 4000 4100] [--requests 200]
                                         [--attacker-addresses 1] [--skip-peer]
                                         [--http httptools h11]

Starts its own Redis and SQLite database and, in turn, two uvicorn processes with
the production flags (``devstack.subprocesses.SERVER_LIMITS``, so
``--limit-concurrency 4096``):

* **guarded**: ``--http notification.http_guard:GuardedHttpToolsProtocol`` (or
  ``GuardedH11Protocol``) with its defaults (10 s to send a request head, 256
  connections per address);
* **peer** (the floor to compare with, same run): ``--http httptools`` (or ``h11``),
  uvicorn's own protocol over the same parser, with no head deadline and no
  per-address cap.

``--http`` names the parsers to run, each guarded and then its peer (both by default).

Against each: the legitimate client alone (``--requests`` anonymous ``{ __typename }``
POSTs, each on a new connection, from 127.0.0.1), then the same while an attacker
holds ``--idle`` connections that never send a byte (4,000, then 4,100: just
under and just over ``--limit-concurrency``), from
``--attacker-addresses`` loopback addresses (127.0.0.2, 127.0.0.3, …), opening a
new one whenever the server closes one (after 1 s). Prints the success rate
(HTTP 200 within 5 s), p50 and p99 of the legitimate requests, and how many idle
sockets the attacker held when the legitimate client started.

Client and server share the machine's cores; the attacker's reconnects cost the
server CPU too, which is part of what is measured.
"""

import argparse
import asyncio
import multiprocessing
import os
import resource
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.status import (  # noqa: E402
    percentile,
    setup_django,
    start_uvicorn,
    throwaway_services,
)
from devstack.subprocesses import GUARDED_PROTOCOLS  # noqa: E402

QUERY = b'{"query": "{ __typename }"}'
LEGIT_TIMEOUT = 5.0


class Attacker:
    """Holds ``count`` idle connections from ``addresses``, in a process of its own.

    A process, not a thread: the attacker's event loop must not take the legitimate
    client's GIL, or its latency would measure the attacker's client as well.
    """

    def __init__(self, host: str, port: int, count: int, addresses: list[str]) -> None:
        self.held = multiprocessing.Value("i", 0)
        self.opened = multiprocessing.Value("i", 0)
        self.stopping = multiprocessing.Event()
        self.count = count
        self.process = multiprocessing.Process(
            target=_attack,
            args=(host, port, count, addresses, self.held, self.opened, self.stopping),
        )

    def __enter__(self) -> "Attacker":
        self.process.start()
        deadline = time.monotonic() + 30
        while self.opened.value < self.count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # let the server answer (or not) the last ones
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.process.join(60)
        if self.process.is_alive():
            self.process.kill()


def _attack(host, port, count, addresses, held, opened, stopping) -> None:
    async def hold(source: str) -> None:
        while not stopping.is_set():
            writer = None
            try:
                reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
                with opened.get_lock():
                    opened.value += 1
                with held.get_lock():
                    held.value += 1
                try:
                    while await reader.read(65536):
                        pass  # a 503 or 408 the server sent before closing
                finally:
                    with held.get_lock():
                        held.value -= 1
            except OSError:
                pass
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(1.0)

    async def run() -> None:
        tasks = [asyncio.create_task(hold(addresses[i % len(addresses)])) for i in range(count)]
        while not stopping.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def csrf_headers(base_url: str) -> dict[str, str]:
    """What an anonymous browser page sends: the CSRF cookie and its header."""
    import httpx

    with httpx.Client(trust_env=False, timeout=LEGIT_TIMEOUT) as client:
        client.get(base_url + "/graphql/", headers={"Accept": "text/html"})
        token = client.cookies["csrftoken"]
    return {
        "Content-Type": "application/json",
        "Cookie": f"csrftoken={token}",
        "X-CSRFToken": token,
    }


def legit_requests(base_url: str, count: int, headers: dict[str, str]) -> tuple[int, list[float]]:
    """``count`` POSTs, each on a fresh connection; successes and their latencies (s)."""
    import httpx

    ok, latencies = 0, []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with httpx.Client(trust_env=False, timeout=LEGIT_TIMEOUT) as client:
                response = client.post(base_url + "/graphql/", content=QUERY, headers=headers)
            if response.status_code == 200:
                ok += 1
                latencies.append(time.perf_counter() - started)
        except httpx.HTTPError:
            pass
    return ok, latencies


def report(label: str, requests: int, ok: int, latencies: list[float], held: int | str) -> None:
    p50 = f"{percentile(latencies, 0.5) * 1000:.1f}" if latencies else "-"
    p99 = f"{percentile(latencies, 0.99) * 1000:.1f}" if latencies else "-"
    print(
        f"| {label} | {held} | {ok}/{requests} ({100 * ok / requests:.0f}%) | {p50} | {p99} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, nargs="+", default=[4000, 4100])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--attacker-addresses", type=int, default=1)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument(
        "--http", nargs="+", choices=sorted(GUARDED_PROTOCOLS), default=["httptools", "h11"]
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max(args.idle) + 1024
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"ulimit -n is {hard}; {needed} file descriptors are needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))  # inherited by uvicorn

    addresses = [f"127.0.0.{2 + i}" for i in range(args.attacker_addresses)]
    servers = []
    for parser_name in args.http:
        servers.append((f"guarded {parser_name}", GUARDED_PROTOCOLS[parser_name]))
        if not args.skip_peer:
            servers.append((f"peer: plain {parser_name}", parser_name))
    with ExitStack() as stack:
        env = {**os.environ, **throwaway_services(stack, "sqlite", "idle-flood-")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        setup_django(env)
        load = os.getloadavg()[0]
        print(
            f"{' and '.join(map(str, args.idle))} idle connections from "
            f"{len(addresses)} address(es), "
            f"{args.requests} legitimate requests per phase, load average {load:.1f}\n"
        )
        print("| server, phase | idle sockets held | legitimate 200s | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        for label, http in servers:
            process, base_url = start_uvicorn(env, http=http, log_level="error")
            try:
                headers = csrf_headers(base_url)
                assert legit_requests(base_url, 1, headers)[0] == 1, "a legitimate request fails"
                ok, latencies = legit_requests(base_url, args.requests, headers)
                report(f"{label}, alone", args.requests, ok, latencies, 0)
                host, port = base_url.removeprefix("http://").split(":")
                for idle in args.idle:
                    with Attacker(host, int(port), idle, addresses) as attacker:
                        held = attacker.held.value
                        ok, latencies = legit_requests(base_url, args.requests, headers)
                    report(f"{label}, {idle} idle", args.requests, ok, latencies, held)
            finally:
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    main()
